"""Build the server `ssl.SSLContext` of a TLS or WSS listener from its configuration."""

from __future__ import annotations

import ssl

from .config import ListenerConfig

_MIN_VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def server_ssl_context(config: ListenerConfig) -> ssl.SSLContext:
    """Return a server context: the listener's certificate and key, TLS >= the configured minimum,
    and client certificates verified against `cafile` (optional unless `require_client_cert`).
    """
    if config.certfile is None or config.keyfile is None:
        raise ValueError(f"listener {config.name!r} needs certfile and keyfile for TLS")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = _MIN_VERSIONS[config.tls_min_version]
    context.load_cert_chain(certfile=config.certfile, keyfile=config.keyfile)
    if config.ciphers:
        context.set_ciphers(config.ciphers)
    if config.cafile is not None:
        context.load_verify_locations(cafile=config.cafile)
        # With a CA but no requirement, a client may still authenticate by certificate.
        context.verify_mode = ssl.CERT_REQUIRED if config.require_client_cert else ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> dict[str, object] | None:
    """The verified client certificate as `getpeercert()` gives it, or None when there is none."""
    if ssl_object is None:
        return None
    certificate = ssl_object.getpeercert()
    # getpeercert() returns {} when a certificate was received but not verified (CERT_NONE).
    return dict(certificate) if certificate else None
