"""Throw-away X.509 material for tests: a CA, a server certificate and client certificates.

Everything is signed by one fresh CA and written as PEM files, so `ssl` on both sides can load
it by path. EC P-256 keys keep generation fast. Requires the `cryptography` package (in the
`hookmq[test]` extra); nothing here is fit for production use.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=2)
"""How long generated certificates are valid; tests never need more."""

SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1", "::1")
"""Subject alternative names of the default server certificate."""


@dataclass(frozen=True)
class CertificateFiles:
    """Paths of one certificate and its private key, both PEM."""

    certfile: Path
    keyfile: Path


@dataclass(frozen=True)
class TestCertificates:
    """A CA and the server certificate it signed, with a way to sign client certificates."""

    __test__ = False  # not a pytest test class despite its name

    directory: Path
    cafile: Path
    server: CertificateFiles
    _ca_key: ec.EllipticCurvePrivateKey
    _ca_cert: x509.Certificate

    def client(self, common_name: str, sans: Sequence[str] = (), *, name: str | None = None) -> CertificateFiles:
        """Sign a client certificate with this CA: subject CN=common_name, optional SANs.

        SANs that parse as IP addresses become IP entries, strings with "@" e-mail entries,
        strings with "://" URIs, anything else DNS names. Files are named after `name`
        (default: the common name).
        """
        return write_client_certificate(self.directory, self._ca_key, self._ca_cert, common_name, sans, name=name)

    def stranger(self, common_name: str = "stranger") -> CertificateFiles:
        """A client certificate signed by a different, untrusted CA."""
        other_key, other_cert = _make_ca(f"untrusted CA for {common_name}")
        return write_client_certificate(
            self.directory, other_key, other_cert, common_name, (), name=f"untrusted-{common_name}"
        )


def generate_certificates(directory: Path | str, server_names: Sequence[str] = SERVER_NAMES) -> TestCertificates:
    """Create a CA (ca.pem) and a server certificate (server.pem, server.key) in `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = _make_ca("hookmq test CA")
    cafile = directory / "ca.pem"
    cafile.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    server_key = _new_key()
    server_cert = _sign(
        ca_key, ca_cert, server_key.public_key(), server_names[0] if server_names else "server",
        server_names, ExtendedKeyUsageOID.SERVER_AUTH,
    )
    server = _write_pair(directory, "server", server_cert, server_key)
    return TestCertificates(directory, cafile, server, ca_key, ca_cert)


def write_client_certificate(
    directory: Path,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    sans: Sequence[str] = (),
    *,
    name: str | None = None,
) -> CertificateFiles:
    """Sign a client certificate for `common_name` with the given CA and write it to `directory`."""
    key = _new_key()
    cert = _sign(ca_key, ca_cert, key.public_key(), common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH)
    return _write_pair(directory, f"client-{_safe(name or common_name)}", cert, key)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _now() -> datetime.datetime:
    # Backdated a little so that a clock skew between processes never makes it "not yet valid".
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


def _make_ca(common_name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _sign(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: ec.EllipticCurvePublicKey,
    common_name: str,
    sans: Sequence[str],
    usage: x509.ObjectIdentifier,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(s) for s in sans]), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def _general_name(value: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    if "://" in value:
        return x509.UniformResourceIdentifier(value)
    if "@" in value:
        return x509.RFC822Name(value)
    return x509.DNSName(value)


def _write_pair(
    directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey
) -> CertificateFiles:
    certfile = directory / f"{stem}.pem"
    keyfile = directory / f"{stem}.key"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    keyfile.chmod(0o600)
    return CertificateFiles(certfile, keyfile)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
