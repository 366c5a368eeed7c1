"""HTTPS/WSS served by Tornado itself (one process without a TLS-terminating balancer):
``TLS_CERT_FILE`` and ``TLS_KEY_FILE`` become the listening socket's SSL context."""

from __future__ import annotations

import ssl

from agenthub.config import Settings


class TlsError(Exception):
    """A certificate or key file cannot be used; the message names the variable and why."""


def _readable(variable: str, path: str) -> None:
    try:
        with open(path, "rb") as handle:
            handle.read(1)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        raise TlsError(f"{variable}: cannot read {path}: {reason}") from None


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The context to listen with, or None when TLS is off. Checked before listening, so a
    bad file stops the start with one clear line instead of failing every handshake."""
    if not settings.tls:
        return None
    _readable("TLS_CERT_FILE", settings.tls_cert_file)
    _readable("TLS_KEY_FILE", settings.tls_key_file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    except ssl.SSLError as exc:
        raise TlsError(
            f"TLS_CERT_FILE/TLS_KEY_FILE: cannot load {settings.tls_cert_file} with "
            f"{settings.tls_key_file}: {exc.reason or exc} (a PEM certificate chain and "
            "its unencrypted PEM private key, matching each other)"
        ) from None
    return context
