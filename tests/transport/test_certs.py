"""hookmq.testing.certs: the generated material is what TLS code on both sides accepts."""

from __future__ import annotations

import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hookmq.testing.certs import generate_certificates


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_files_are_written_and_chain_to_the_ca(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path / "pki")
    assert certs.cafile == tmp_path / "pki" / "ca.pem"
    ca, server = load(certs.cafile), load(certs.server.certfile)
    assert server.issuer == ca.subject
    server.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert stat.S_IMODE(certs.server.keyfile.stat().st_mode) == 0o600


def test_server_certificate_names_loopback(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path)
    names = load(certs.server.certfile).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1"]
    usage = load(certs.server.certfile).extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.SERVER_AUTH in usage


def test_client_certificate_has_common_name_and_typed_sans(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path)
    files = certs.client("dev 1", ["dev1.example.com", "10.0.0.7", "ops@example.com", "spiffe://example/dev1"])
    assert files.certfile.name == "client-dev_1.pem"
    cert = load(files.certfile)
    cert.verify_directly_issued_by(load(certs.cafile))
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev 1"
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["dev1.example.com"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.7"]
    assert names.get_values_for_type(x509.RFC822Name) == ["ops@example.com"]
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example/dev1"]
    assert ExtendedKeyUsageOID.CLIENT_AUTH in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value


def test_ssl_module_loads_everything(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(certs.server.certfile, certs.server.keyfile)
    server.load_verify_locations(certs.cafile)
    client = ssl.create_default_context(cafile=certs.cafile)
    own = certs.client("x")
    client.load_cert_chain(own.certfile, own.keyfile)


def test_stranger_is_signed_by_another_ca(tmp_path: Path) -> None:
    certs = generate_certificates(tmp_path)
    stranger = load(certs.stranger("mallory").certfile)
    with pytest.raises(ValueError):
        stranger.verify_directly_issued_by(load(certs.cafile))
    assert stranger.issuer != load(certs.cafile).subject
