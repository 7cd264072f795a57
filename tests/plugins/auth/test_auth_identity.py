"""User names from verified client certificates (the `ssl.getpeercert()` shape)."""

from __future__ import annotations

from typing import Any

from hookmq.plugins.auth.identity import certificate_identity

CERT: dict[str, Any] = {
    "subject": ((("countryName", "DE"),), (("organizationName", "Plant"),), (("commonName", "sensor-7"),)),
    "subjectAltName": (("DNS", "sensor-7.plant.example"), ("email", "ops@plant.example"), ("DNS", "alt.example")),
}


def test_common_name() -> None:
    assert certificate_identity(CERT, "cn") == "sensor-7"


def test_first_dns_san() -> None:
    assert certificate_identity(CERT, "san_dns") == "sensor-7.plant.example"


def test_email_san() -> None:
    assert certificate_identity(CERT, "san_email") == "ops@plant.example"


def test_none_or_missing() -> None:
    assert certificate_identity(CERT, "none") is None
    assert certificate_identity(None, "cn") is None
    assert certificate_identity({"subject": ()}, "cn") is None
    assert certificate_identity({"subject": ()}, "san_email") is None
