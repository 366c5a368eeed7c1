"""Deprecated settings are accepted whatever their value, ignored, and warned about (by the
CLI, through the same one-line notes as misspelt settings: tests/integration/test_cli.py)."""

from __future__ import annotations

import pytest

from agenthub.config import DEPRECATED_SETTINGS, deprecated_settings, load_settings

BASE = {"JWT_SECRET": "s" * 32}


@pytest.mark.parametrize("value", ["5", "300", "0", "not-a-number"])
def test_socket_revalidate_seconds_is_accepted_ignored_and_warned_about(value: str) -> None:
    environ = {**BASE, "SOCKET_REVALIDATE_SECONDS": value}
    settings = load_settings(environ)
    assert not hasattr(settings, "socket_revalidate_seconds")
    assert "SOCKET_REVALIDATE_SECONDS" not in settings.masked()
    [warning] = deprecated_settings(environ)
    assert warning.startswith("SOCKET_REVALIDATE_SECONDS is deprecated and ignored")


def test_no_warning_when_no_deprecated_setting_is_given() -> None:
    assert deprecated_settings(BASE) == []
    assert "SOCKET_REVALIDATE_SECONDS" in DEPRECATED_SETTINGS
