"""Settings read from environment variables and validated once, at start.

Invalid values stop the process with one line per bad variable, naming it, and exit
status 78 (EX_CONFIG), so systemd's RestartPreventExitStatus=78 stops a restart loop.
An unknown variable that looks like a misspelt setting (``JWT_TTL``) is only warned about.
"""

from __future__ import annotations

import difflib
import ipaddress
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, validate, validates
from marshmallow import fields as mf

EX_CONFIG = 78

SECRET_SETTINGS = frozenset({"jwt_secret", "postgres_password", "metrics_token"})
# Settings whose value may embed a password (redis://:PASSWORD@host): shown without it.
URL_SETTINGS = frozenset({"redis_url"})

# Variables that used to mean something: accepted whatever their value, ignored, and warned
# about at start (a config file written for an older version must not stop the service).
DEPRECATED_SETTINGS = {
    "SOCKET_REVALIDATE_SECONDS": (
        "live sockets learn of revocations through PostgreSQL notifications now"
        " (docs/CONFIG.md); remove it"
    ),
}


class ConfigError(Exception):
    """Settings are missing or invalid: one line per problem, each naming its variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [f"invalid configuration: {problem}" for problem in problems]
        super().__init__("\n".join(self.problems))


def _parse_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValidationError("must be true or false")


class _Bool(mf.Field[bool]):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if isinstance(value, bool):
            return value
        return _parse_bool(str(value))


class _Origins(mf.Field[tuple[str, ...]]):
    """Comma-separated exact origins (``http://host:port``) or CIDR blocks (``10.0.0.0/8``)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[str, ...]:
        items = tuple(part.strip() for part in str(value).split(",") if part.strip())
        for item in items:
            if item == "*":
                continue
            if "://" in item:
                if not item.startswith(("http://", "https://")) or item.endswith("/"):
                    raise ValidationError(f"bad origin {item!r} (want scheme://host[:port])")
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValidationError(f"bad origin or CIDR {item!r}") from exc
        return items


class _Networks(mf.Field[tuple[str, ...]]):
    """Comma-separated addresses or CIDR blocks (``127.0.0.1,10.0.0.0/24``)."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Any, **kwargs: Any
    ) -> tuple[str, ...]:
        items = tuple(part.strip() for part in str(value).split(",") if part.strip())
        for item in items:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as exc:
                raise ValidationError(f"bad address or CIDR {item!r}") from exc
        return items


class SettingsSchema(Schema):
    """Environment variable name -> typed setting. Keys are the variable names."""

    class Meta:
        unknown = EXCLUDE

    HOST = mf.String(load_default="127.0.0.1", validate=validate.Length(min=1))
    PORT = mf.Integer(load_default=3000, validate=validate.Range(min=1, max=65535))
    LOG_LEVEL = mf.String(
        load_default="info",
        validate=validate.OneOf(["debug", "info", "warning", "error", "critical"]),
    )
    JWT_SECRET = mf.String(required=True)
    JWT_TTL_SECONDS = mf.Integer(load_default=900, validate=validate.Range(min=30, max=86400))
    POSTGRES_HOST = mf.String(load_default="127.0.0.1", validate=validate.Length(min=1))
    POSTGRES_PORT = mf.Integer(load_default=5432, validate=validate.Range(min=1, max=65535))
    POSTGRES_DB = mf.String(load_default="agenthub", validate=validate.Length(min=1))
    POSTGRES_USER = mf.String(load_default="agenthub", validate=validate.Length(min=1))
    POSTGRES_PASSWORD = mf.String(load_default="")
    # Not libpq's "prefer": its retry without SSL opens a second socket under aiopg's
    # feet, which aiopg does not survive (seen with `sudo agenthub` and HOME=/root).
    POSTGRES_SSLMODE = mf.String(
        load_default="disable",
        validate=validate.OneOf(["disable", "require", "verify-ca", "verify-full"]),
    )
    DB_POOL_MAX = mf.Integer(load_default=10, validate=validate.Range(min=1, max=200))
    DB_CONNECT_TIMEOUT = mf.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    ALLOWED_ORIGINS = _Origins(load_default=("http://localhost:3000", "http://127.0.0.1:3000"))
    FEATURE_MESSAGING_ENABLED = _Bool(load_default=True)
    MAX_MESSAGE_CHARS = mf.Integer(
        load_default=16000, validate=validate.Range(min=1, max=1_000_000)
    )
    MAX_REQUEST_BYTES = mf.Integer(
        load_default=1_048_576, validate=validate.Range(min=1024, max=64 * 1_048_576)
    )
    PAGE_SIZE_DEFAULT = mf.Integer(load_default=50, validate=validate.Range(min=1, max=1000))
    PAGE_SIZE_MAX = mf.Integer(load_default=200, validate=validate.Range(min=1, max=1000))
    ARGON2_WORKERS = mf.Integer(load_default=2, validate=validate.Range(min=1, max=64))
    RATE_LIMIT_ANONYMOUS_PER_MINUTE = mf.Integer(
        load_default=100, validate=validate.Range(min=1, max=10_000_000)
    )
    RATE_LIMIT_AGENT_PER_MINUTE = mf.Integer(
        load_default=600, validate=validate.Range(min=1, max=10_000_000)
    )
    RATE_LIMIT_LOGIN_FAILURES_PER_ADDRESS = mf.Integer(
        load_default=10, validate=validate.Range(min=1, max=10_000_000)
    )
    RATE_LIMIT_LOGIN_FAILURES_PER_PREFIX = mf.Integer(
        load_default=5, validate=validate.Range(min=1, max=10_000_000)
    )
    METRICS_TOKEN = mf.String(load_default="")
    SOCKET_EVENTS_PER_SECOND = mf.Float(
        load_default=30.0, validate=validate.Range(min=0.1, max=100_000)
    )
    SOCKET_BURST = mf.Integer(load_default=30, validate=validate.Range(min=1, max=100_000))
    SOCKET_FLOOD_DISCONNECT_AFTER = mf.Integer(
        load_default=60, validate=validate.Range(min=1, max=1_000_000)
    )
    PRESENCE_TIMEOUT_SECONDS = mf.Integer(load_default=30, validate=validate.Range(min=3, max=3600))
    SOCKET_MAX_BUFFER_BYTES = mf.Integer(
        load_default=4 * 1_048_576, validate=validate.Range(min=65_536, max=1024 * 1_048_576)
    )
    MAX_WAITERS = mf.Integer(load_default=10_000, validate=validate.Range(min=1, max=1_000_000))
    MAX_WAIT_SECONDS = mf.Integer(load_default=60, validate=validate.Range(min=1, max=60))
    # Several processes sharing one Redis: unset = one process, Redis never touched.
    REDIS_URL = mf.String(
        load_default="",
        validate=validate.Regexp(
            r"^$|^(redis|rediss|unix)://", error="must start with redis://, rediss:// or unix://"
        ),
    )
    # Channel and key names of this deployment in Redis (two deployments may share one Redis).
    REDIS_PREFIX = mf.String(
        load_default="agenthub", validate=validate.Regexp(r"^[A-Za-z0-9_.:-]{1,64}$")
    )
    WORKERS = mf.Integer(load_default=1, validate=validate.Range(min=1, max=256))
    TLS_CERT_FILE = mf.String(load_default="")
    TLS_KEY_FILE = mf.String(load_default="")
    HSTS = _Bool(load_default=False)
    TRUSTED_PROXIES = _Networks(load_default=())

    @validates("JWT_SECRET")
    def _secret_long_enough(self, value: str, **kwargs: Any) -> None:
        if len(value) < 32:
            raise ValidationError("must be at least 32 characters (try: openssl rand -hex 32)")


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    log_level: str
    jwt_secret: str
    jwt_ttl_seconds: int
    postgres_host: str
    postgres_port: int
    postgres_db: str
    postgres_user: str
    postgres_password: str
    postgres_sslmode: str
    db_pool_max: int
    db_connect_timeout: float
    allowed_origins: tuple[str, ...]
    feature_messaging_enabled: bool
    max_message_chars: int
    max_request_bytes: int
    page_size_default: int
    page_size_max: int
    argon2_workers: int
    rate_limit_anonymous_per_minute: int
    rate_limit_agent_per_minute: int
    rate_limit_login_failures_per_address: int
    rate_limit_login_failures_per_prefix: int
    metrics_token: str
    socket_events_per_second: float
    socket_burst: int
    socket_flood_disconnect_after: int
    presence_timeout_seconds: int
    socket_max_buffer_bytes: int
    max_waiters: int
    max_wait_seconds: int
    redis_url: str = ""
    redis_prefix: str = "agenthub"
    workers: int = 1
    tls_cert_file: str = ""
    tls_key_file: str = ""
    hsts: bool = False
    trusted_proxies: tuple[str, ...] = ()

    @property
    def tls(self) -> bool:
        """Tornado serves HTTPS/WSS itself (both files set; load_settings refuses one alone)."""
        return bool(self.tls_cert_file and self.tls_key_file)

    @property
    def sends_hsts(self) -> bool:
        return self.tls or self.hsts

    def dsn(self) -> str:
        """libpq keyword DSN; the password is passed through unquoted-safe escaping."""
        parts = {
            "host": self.postgres_host,
            "port": str(self.postgres_port),
            "dbname": self.postgres_db,
            "user": self.postgres_user,
            "connect_timeout": str(max(1, round(self.db_connect_timeout))),
            "application_name": "agenthub",
            "sslmode": self.postgres_sslmode,
        }
        if self.postgres_password:
            parts["password"] = self.postgres_password
        return " ".join(f"{key}={_quote_dsn(value)}" for key, value in parts.items())

    def sqlalchemy_url(self) -> str:
        from sqlalchemy.engine import URL

        url = URL.create(
            "postgresql+psycopg2",
            username=self.postgres_user,
            password=self.postgres_password or None,
            host=self.postgres_host,
            port=self.postgres_port,
            database=self.postgres_db,
            query={"sslmode": self.postgres_sslmode},
        )
        return url.render_as_string(hide_password=False)

    def masked(self) -> dict[str, Any]:
        """Effective settings keyed by variable name, secrets replaced by asterisks."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_SETTINGS:
                value = "********" if value else ""
            elif f.name in URL_SETTINGS and value:
                value = _without_password(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            out[f.name.upper()] = value
        return out


def _without_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    user = f"{parts.username}:" if parts.username else ":"
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}********@{host}"))


def _quote_dsn(value: str) -> str:
    if value and not any(ch in value for ch in " '\\"):
        return value
    escaped = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"'{escaped}'"


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Validate ``environ``; raise ConfigError naming every bad variable."""
    schema = SettingsSchema()
    relevant = {key: value for key, value in environ.items() if key in schema.fields}
    try:
        loaded: dict[str, Any] = schema.load(relevant)
    except ValidationError as exc:
        messages = exc.normalized_messages()  # type: ignore[no-untyped-call]
        assert isinstance(messages, dict)
        raise ConfigError(
            [_problem(name, messages[name]) for name in schema.fields if name in messages]
        ) from None
    if loaded["PAGE_SIZE_DEFAULT"] > loaded["PAGE_SIZE_MAX"]:
        raise ConfigError(["PAGE_SIZE_DEFAULT: must not exceed PAGE_SIZE_MAX"])
    if bool(loaded["TLS_CERT_FILE"]) != bool(loaded["TLS_KEY_FILE"]):
        given, missing = (
            ("TLS_CERT_FILE", "TLS_KEY_FILE")
            if loaded["TLS_CERT_FILE"]
            else ("TLS_KEY_FILE", "TLS_CERT_FILE")
        )
        raise ConfigError([f"{missing}: must be set too when {given} is (set both or neither)"])
    if loaded["PORT"] + loaded["WORKERS"] - 1 > 65535:
        raise ConfigError(["WORKERS: PORT + WORKERS - 1 must not exceed 65535"])
    return Settings(**{key.lower(): value for key, value in loaded.items()})


def _problem(name: str, problem: Any) -> str:
    text = "; ".join(problem) if isinstance(problem, list) else str(problem)
    if name == "JWT_SECRET" and "Missing data" in text:
        text = "is required (try: openssl rand -hex 32)"
    return f"{name}: {text}"


# Unknown variables starting with one of these are checked for misspelt setting names.
# AGENTHUB_ is ours too, though no setting carries it: AGENTHUB_PORT most likely means PORT.
_OWN_PREFIX = "AGENTHUB_"
_SIMILAR_ENOUGH = 0.6  # difflib ratio: JWT_TTL ~ JWT_TTL_SECONDS is 0.64
# Ours but read by the clients and the packaged wrapper, not the server: never misspellings
# (AGENTHUB_ENV_FILE is as close to TLS_KEY_FILE as JWT_TTL is to JWT_TTL_SECONDS).
CLIENT_VARIABLES = frozenset(
    {"AGENTHUB_URL", "AGENTHUB_TOKEN", "AGENTHUB_ENV_FILE", "AGENTHUB_CA_FILE"}
)


def deprecated_settings(environ: Mapping[str, str]) -> list[str]:
    """One warning per deprecated setting present (it is accepted and ignored)."""
    return [
        f"{name} is deprecated and ignored: {why}"
        for name, why in DEPRECATED_SETTINGS.items()
        if name in environ
    ]


def misspelt_settings(environ: Mapping[str, str]) -> list[str]:
    """One warning per unknown variable that looks like a misspelt setting (never an error:
    the environment holds other programs' variables too)."""
    known = list(SettingsSchema().fields)
    prefixes = {_OWN_PREFIX} | {name.split("_", 1)[0] + "_" for name in known if "_" in name}
    warnings = []
    for name in sorted(environ):
        if name in known or name in DEPRECATED_SETTINGS or name in CLIENT_VARIABLES:
            continue
        if not name.startswith(tuple(prefixes)):
            continue
        meant = name.removeprefix(_OWN_PREFIX) or name
        matches = difflib.get_close_matches(meant, known, n=1, cutoff=_SIMILAR_ENOUGH)
        if matches:
            warnings.append(f"{name} is not a setting; did you mean {matches[0]}?")
    return warnings
