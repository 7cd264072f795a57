"""The user name carried by a verified TLS client certificate.

The transport hands plugins ``client.tls_peer_certificate`` exactly as ``ssl.getpeercert()``
returns it: ``subject`` is a tuple of RDNs, each a tuple of ``(field, value)`` pairs, and
``subjectAltName`` a tuple of ``(kind, value)`` pairs such as ``("DNS", "host")`` or
``("email", "a@b")``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .settings import TlsIdentity

_SAN_KIND = {"san_dns": "DNS", "san_email": "email"}


def certificate_identity(certificate: Mapping[str, Any] | None, source: TlsIdentity) -> str | None:
    """The user name ``source`` selects from ``certificate``, or None when there is none to take."""
    if certificate is None or source == "none":
        return None
    if source == "cn":
        return _common_name(certificate)
    return _first_san(certificate, _SAN_KIND[source])


def _common_name(certificate: Mapping[str, Any]) -> str | None:
    # The most specific CN is the last one in the subject, as OpenSSL prints it.
    found: str | None = None
    for rdn in certificate.get("subject", ()):
        for field, value in rdn:
            if field == "commonName" and isinstance(value, str) and value:
                found = value
    return found


def _first_san(certificate: Mapping[str, Any], kind: str) -> str | None:
    for san_kind, value in certificate.get("subjectAltName", ()):
        if san_kind == kind and isinstance(value, str) and value:
            return value
    return None
