"""Settings: defaults, a ConfigError naming every bad variable, typo warnings, masked secrets,
and every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agenthub.config import (
    ConfigError,
    Settings,
    SettingsSchema,
    load_settings,
    misspelt_settings,
)

SECRET = "s" * 40


def env(**overrides: str) -> dict[str, str]:
    base = {"JWT_SECRET": SECRET}
    base.update(overrides)
    return base


def test_defaults():
    s = load_settings(env())
    assert s.host == "127.0.0.1"
    assert s.port == 3000
    assert s.log_level == "info"
    assert s.jwt_ttl_seconds == 900
    assert s.postgres_host == "127.0.0.1"
    assert s.postgres_port == 5432
    assert s.postgres_db == "agenthub"
    assert s.postgres_user == "agenthub"
    assert s.postgres_password == ""
    assert s.feature_messaging_enabled is True
    assert s.page_size_default == 50
    assert s.page_size_max == 200
    assert s.max_request_bytes == 1_048_576
    assert s.allowed_origins == ("http://localhost:3000", "http://127.0.0.1:3000")


def test_values_are_parsed_and_unrelated_variables_ignored():
    s = load_settings(
        env(
            PORT="8080",
            LOG_LEVEL="debug",
            FEATURE_MESSAGING_ENABLED="off",
            ALLOWED_ORIGINS="http://a.lan:3000, 10.0.0.0/8",
            DB_CONNECT_TIMEOUT="2.5",
            PATH="/usr/bin",
            HOME="/root",
        )
    )
    assert s.port == 8080
    assert s.log_level == "debug"
    assert s.feature_messaging_enabled is False
    assert s.allowed_origins == ("http://a.lan:3000", "10.0.0.0/8")
    assert s.db_connect_timeout == 2.5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "abc"),
        ("PORT", "0"),
        ("PORT", "70000"),
        ("LOG_LEVEL", "loud"),
        ("JWT_SECRET", "short"),
        ("JWT_TTL_SECONDS", "5"),
        ("POSTGRES_PORT", "-1"),
        ("POSTGRES_DB", ""),
        ("DB_POOL_MAX", "0"),
        ("DB_CONNECT_TIMEOUT", "soon"),
        ("ALLOWED_ORIGINS", "ftp://x"),
        ("ALLOWED_ORIGINS", "http://x/"),
        ("ALLOWED_ORIGINS", "not-an-origin"),
        ("FEATURE_MESSAGING_ENABLED", "maybe"),
        ("MAX_MESSAGE_CHARS", "0"),
        ("MAX_REQUEST_BYTES", "10"),
        ("PAGE_SIZE_MAX", "x"),
        ("ARGON2_WORKERS", "0"),
    ],
)
def test_bad_value_names_the_variable(variable, value):
    with pytest.raises(ConfigError) as info:
        load_settings(env(**{variable: value}))
    message = str(info.value)
    assert variable in message
    assert "\n" not in message
    assert message.startswith(f"invalid configuration: {variable}:")
    # Only the offending variable is named, not a neighbour that happens to be valid.
    others = {"PORT", "LOG_LEVEL", "JWT_SECRET", "POSTGRES_PORT", "DB_POOL_MAX"} - {variable}
    assert not any(f"configuration: {o}:" in message for o in others)


def test_missing_jwt_secret_is_named():
    with pytest.raises(ConfigError, match="JWT_SECRET"):
        load_settings({})


def test_page_size_default_above_max_is_rejected():
    with pytest.raises(ConfigError, match="PAGE_SIZE_DEFAULT"):
        load_settings(env(PAGE_SIZE_DEFAULT="300", PAGE_SIZE_MAX="200"))


def test_masked_hides_secrets_only():
    s = load_settings(env(POSTGRES_PASSWORD="hunter2-very-secret"))
    masked = s.masked()
    assert masked["JWT_SECRET"] == "********"
    assert masked["POSTGRES_PASSWORD"] == "********"
    assert SECRET not in repr(masked)
    assert "hunter2-very-secret" not in repr(masked)
    assert masked["PORT"] == 3000
    assert masked["POSTGRES_USER"] == "agenthub"
    assert masked["ALLOWED_ORIGINS"] == "http://localhost:3000,http://127.0.0.1:3000"
    # Every setting appears, keyed by its variable name.
    assert set(masked) == {f.upper() for f in Settings.__dataclass_fields__}


def test_masked_shows_an_empty_password_as_empty():
    assert load_settings(env()).masked()["POSTGRES_PASSWORD"] == ""


def test_dsn_quotes_a_password_with_spaces_and_quotes():
    s = load_settings(env(POSTGRES_PASSWORD="a b'c"))
    assert "password='a b\\'c'" in s.dsn()
    assert "port=5432" in s.dsn()


def test_every_bad_variable_is_reported_in_schema_order():
    with pytest.raises(ConfigError) as info:
        load_settings(env(PORT="abc", JWT_TTL_SECONDS="5", FEATURE_MESSAGING_ENABLED="maybe"))
    problems = info.value.problems
    assert [p.split(": ")[1] for p in problems] == [
        "PORT",
        "JWT_TTL_SECONDS",
        "FEATURE_MESSAGING_ENABLED",
    ]
    assert all(p.startswith("invalid configuration: ") for p in problems)
    assert str(info.value).splitlines() == problems


def test_a_missing_secret_is_reported_with_the_other_problems():
    with pytest.raises(ConfigError) as info:
        load_settings({"LOG_LEVEL": "loud"})
    assert [p.split(": ")[1] for p in info.value.problems] == ["LOG_LEVEL", "JWT_SECRET"]


@pytest.mark.parametrize(
    ("variable", "meant"),
    [
        ("JWT_TTL", "JWT_TTL_SECONDS"),
        ("POSTGRES_PASS", "POSTGRES_PASSWORD"),
        ("POSTGRES_DATABASE", "POSTGRES_DB"),
        ("RATE_LIMIT_AGENT", "RATE_LIMIT_AGENT_PER_MINUTE"),
        ("SOCKET_BURST_SIZE", "SOCKET_BURST"),
        ("AGENTHUB_PORT", "PORT"),
        ("AGENTHUB_JWT_SECRET", "JWT_SECRET"),
    ],
)
def test_a_misspelt_setting_gets_a_suggestion(variable, meant):
    assert misspelt_settings(env(**{variable: "1"})) == [
        f"{variable} is not a setting; did you mean {meant}?"
    ]


def test_other_variables_are_left_alone():
    unrelated = {
        "PATH": "/usr/bin",
        "HOME": "/root",
        "PGPASSWORD": "x",
        "AGENTHUB_URL": "http://hub:3000",  # the agents' client settings
        "AGENTHUB_TOKEN": "agt_x",
        "AGENTHUB_ENV_FILE": "/dev/null",
        "LOG_FORMAT": "json",  # a known prefix, but nothing like a setting
        "PORT": "3000",
        "JWT_TTL_SECONDS": "60",
    }
    assert misspelt_settings(env(**unrelated)) == []


def test_a_deprecated_setting_is_not_taken_for_a_misspelt_one():
    assert misspelt_settings(env(SOCKET_REVALIDATE_SECONDS="5")) == []


def test_misspelt_settings_do_not_stop_loading():
    assert load_settings(env(JWT_TTL="60")).jwt_ttl_seconds == 900


ROOT = Path(__file__).resolve().parents[2]


def _env_file_lines() -> list[str]:
    return (ROOT / "packaging" / "agenthub.env").read_text().splitlines()


def test_the_packaged_env_file_lists_every_setting_with_its_default_and_meaning():
    lines = _env_file_lines()
    listed = {}
    for i, line in enumerate(lines):
        match = re.match(r"^#?([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            listed[match.group(1)] = match.group(2)
            above = lines[i - 1]
            assert above.startswith("# ") and "=" not in above.split()[1], (
                f"{match.group(1)}: the line above should say what it means"
            )
    assert set(listed) == set(SettingsSchema().fields)
    defaults = load_settings(env()).masked()
    for name, value in listed.items():
        if value == "" and name in {"JWT_SECRET", "POSTGRES_PASSWORD"}:
            continue  # to be filled in
        shown = load_settings(env(**{name: value})).masked()[name]
        assert shown == defaults[name], f"{name}={value} is not the default {defaults[name]}"


def test_config_md_documents_every_setting():
    text = (ROOT / "docs" / "CONFIG.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", text, re.MULTILINE))
    assert set(SettingsSchema().fields) - documented == set()


def test_one_tls_file_alone_is_refused_naming_the_missing_one():
    with pytest.raises(ConfigError) as exc:
        load_settings(env(TLS_CERT_FILE="/etc/agenthub/cert.pem"))
    assert exc.value.problems == [
        "invalid configuration: TLS_KEY_FILE: must be set too when TLS_CERT_FILE is"
        " (set both or neither)"
    ]
    both = load_settings(env(TLS_CERT_FILE="/c.pem", TLS_KEY_FILE="/k.pem"))
    assert both.tls and both.sends_hsts
    plain = load_settings(env())
    assert not plain.tls and not plain.sends_hsts
    assert load_settings(env(HSTS="1")).sends_hsts


def test_redis_url_password_is_masked_and_workers_need_room_for_their_ports():
    settings = load_settings(env(REDIS_URL="redis://:s3cret@10.0.0.5:6379/0", WORKERS="4"))
    assert settings.redis_url == "redis://:s3cret@10.0.0.5:6379/0" and settings.workers == 4
    assert settings.masked()["REDIS_URL"] == "redis://:********@10.0.0.5:6379/0"
    with pytest.raises(ConfigError, match="PORT \\+ WORKERS - 1"):
        load_settings(env(PORT="65535", WORKERS="2"))
