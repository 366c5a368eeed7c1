"""Where ``ah`` finds the server and its credential, and the session JWT it keeps between runs.

The server's URL comes from ``--url`` or ``AGENTHUB_URL``; the API token from the file named by
``--token-file`` or from ``AGENTHUB_TOKEN`` (never from the command line, where ``ps`` would
show it). ``ah`` never writes the API token anywhere.

Each run would otherwise exchange the API token for a JWT (``POST /api/v1/sessions``, an
argon2 check on the server). ``JwtCache`` keeps the session JWT — never the API token — in
``$XDG_RUNTIME_DIR/agenthub/<key>.jwt``, mode 0600 in a 0700 directory: a per-user tmpfs that
the system empties at logout. The key is a SHA-256 of the URL and the API token, so another
token or server never picks up the JWT. Without ``XDG_RUNTIME_DIR`` (or when that directory is
not private to the user) nothing is cached and every run logs in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from agenthub.client.http import CA_FILE_VARIABLE, trusting_context
from agenthub.client.models import Session


class ConfigError(Exception):
    """The configuration is missing or unusable: a usage error (exit 2)."""


@dataclass(frozen=True)
class Config:
    url: str
    api_token: str

    def __repr__(self) -> str:  # the token stays out of any repr
        return f"Config(url={self.url!r})"


def resolve(url: str | None, token_file: str | None, env: dict[str, str] | None = None) -> Config:
    """The server and API token from the options, else the environment."""
    environ = os.environ if env is None else env
    url = url or environ.get("AGENTHUB_URL", "")
    if not url:
        raise ConfigError("no server: set AGENTHUB_URL (e.g. http://hub:3000) or pass --url")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--url / AGENTHUB_URL must start with http:// or https://: {url!r}")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--token-file: cannot read {token_file}: {exc}") from None
        if not token:
            raise ConfigError(f"--token-file: {token_file} is empty")
    else:
        token = environ.get("AGENTHUB_TOKEN", "").strip()
        if not token:
            raise ConfigError(
                "no API token: set AGENTHUB_TOKEN (agt_...) or pass --token-file FILE"
            )
    ca_file = environ.get(CA_FILE_VARIABLE, "")
    if ca_file:
        # Checked here so a bad path is a usage error, not a traceback from the first request.
        try:
            trusting_context(ca_file)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    return Config(url.rstrip("/"), token)


class JwtCache:
    """One cached session for one (URL, API token); every method fails quietly (no cache)."""

    def __init__(self, config: Config, env: dict[str, str] | None = None) -> None:
        environ = os.environ if env is None else env
        runtime = environ.get("XDG_RUNTIME_DIR", "")
        self.path: Path | None = None
        if runtime and os.path.isabs(runtime):
            key = hashlib.sha256(f"{config.url}\n{config.api_token}".encode()).hexdigest()[:32]
            self.path = Path(runtime) / "agenthub" / f"{key}.jwt"

    def load(self) -> Session | None:
        if self.path is None or not _private_dir(self.path.parent, create=False):
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if info.st_uid != os.geteuid() or stat.S_IMODE(info.st_mode) & 0o077:
                return None
            with os.fdopen(fd, "rb", closefd=False) as f:
                return Session.from_json(json.loads(f.read(64 * 1024)))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        finally:
            os.close(fd)

    def save(self, session: Session) -> None:
        if self.path is None or not _private_dir(self.path.parent, create=True):
            return
        data = json.dumps({**session.raw, "token": session.token}).encode()
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.fchmod(fd, 0o600)
                os.write(fd, data)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()

    def forget(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()


def _private_dir(path: Path, *, create: bool) -> bool:
    """``path`` is a real directory of this user that nobody else can enter (made if asked)."""
    if create:
        try:
            path.mkdir(mode=0o700, exist_ok=True)
        except OSError:
            return False
    try:
        info = path.lstat()
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.geteuid()
        and not stat.S_IMODE(info.st_mode) & 0o077
    )
