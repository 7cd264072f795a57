"""`hookmq passwd`: reading the password and printing a hash the settings accept."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest

from hookmq.plugins.auth.cli import PasswordInputError, read_password
from hookmq.plugins.auth.passwords import verify_password
from hookmq.plugins.auth.settings import AuthSettings


def test_stdin_takes_the_first_line_without_its_newline() -> None:
    assert read_password(True, io.StringIO("pass word\r\nsecond line\n")) == "pass word"


def test_empty_password_is_refused() -> None:
    with pytest.raises(PasswordInputError, match="empty"):
        read_password(True, io.StringIO("\n"))


def test_prompt_asks_twice_and_refuses_a_mismatch(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["first", "second"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(PasswordInputError, match="do not match"):
        read_password(False)


def test_prompt_returns_a_confirmed_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "same")
    assert read_password(False) == "same"


def test_command_prints_a_hash_the_config_accepts() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookmq", "passwd", "--stdin"],
        input="wonderland\n", capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    encoded = result.stdout.strip()
    assert "wonderland" not in result.stdout
    assert verify_password("wonderland", encoded)
    assert AuthSettings.model_validate({"users": {"alice": encoded}}).users["alice"].password == encoded


def test_command_fails_cleanly_on_empty_input() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookmq", "passwd", "--stdin"],
        input="", capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "empty" in result.stderr
