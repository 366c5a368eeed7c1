"""Deprecated settings are accepted whatever their value, ignored, and warned about."""

from __future__ import annotations

import logging

import pytest

from agenthub.config import DEPRECATED_SETTINGS, load_settings

BASE = {"JWT_SECRET": "s" * 32}


@pytest.mark.parametrize("value", ["5", "300", "0", "not-a-number"])
def test_socket_revalidate_seconds_is_accepted_ignored_and_warned_about(
    value: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="agenthub.config"):
        settings = load_settings({**BASE, "SOCKET_REVALIDATE_SECONDS": value})
    assert not hasattr(settings, "socket_revalidate_seconds")
    assert "SOCKET_REVALIDATE_SECONDS" not in settings.masked()
    [record] = caplog.records
    assert record.getMessage().startswith("SOCKET_REVALIDATE_SECONDS is deprecated and ignored")


def test_no_warning_when_no_deprecated_setting_is_given(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="agenthub.config"):
        load_settings(BASE)
    assert not caplog.records
    assert "SOCKET_REVALIDATE_SECONDS" in DEPRECATED_SETTINGS
