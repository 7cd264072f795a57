"""`[plugins.dashboard]` validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from hookmq.plugins.dashboard import HOOKMQ_DEFAULT_ENABLED, DashboardSettings


def test_defaults() -> None:
    settings = DashboardSettings()
    assert settings.address == "127.0.0.1:8080"  # this machine only unless configured
    assert settings.token is None and settings.open_on_loopback is False
    assert settings.history_length == int(settings.history_seconds / settings.sample_interval) + 1
    assert HOOKMQ_DEFAULT_ENABLED is True  # aiohttp and prometheus-client are installed here


@pytest.mark.parametrize("table", [
    {"address": "8080"}, {"address": "[::1:80"}, {"tokn": "x"}, {"token": "short"},
    {"sample_interval": 0}, {"sample_interval": 5, "history_seconds": 1},
])
def test_bad_tables_are_refused(table: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        DashboardSettings.model_validate(table)
