"""Session JWTs: HS256 only; any other algorithm, key, time or shape is InvalidSession."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from agenthub.auth import jwt_tokens
from agenthub.auth.jwt_tokens import InvalidSession

SECRET = "k" * 64
AGENT = uuid.uuid4()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def forge(header: dict[str, Any], payload: dict[str, Any], key: str = SECRET) -> str:
    """A token signed with HMAC-SHA256 under ``key`` whatever the header claims."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    sig = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(sig)}"


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": str(AGENT),
        "role": "agent",
        "tid": "abcdefghijkl",
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def test_round_trip():
    token, expires_at = jwt_tokens.issue(
        SECRET, agent_id=AGENT, role="admin", token_prefix="abcdefghijkl", ttl_seconds=900
    )
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    c = jwt_tokens.decode(SECRET, token)
    assert c.agent_id == AGENT
    assert c.role == "admin"
    assert c.token_prefix == "abcdefghijkl"
    assert c.expires_at == expires_at
    assert int((c.expires_at - c.issued_at).total_seconds()) == 900
    assert len(c.jti) == 32


def test_a_session_never_outlives_the_time_it_is_capped_at():
    cap = datetime.now(UTC) + timedelta(seconds=30.9)
    token, expires_at = jwt_tokens.issue(
        SECRET, agent_id=AGENT, role="agent", token_prefix="p", ttl_seconds=900, not_after=cap
    )
    assert expires_at <= cap
    assert jwt_tokens.decode(SECRET, token).expires_at == expires_at
    _, uncapped = jwt_tokens.issue(
        SECRET, agent_id=AGENT, role="agent", token_prefix="p", ttl_seconds=10, not_after=cap
    )
    assert uncapped < cap - timedelta(seconds=15)  # the TTL, when it ends first


def test_a_jwt_is_told_apart_from_an_api_token():
    token, _ = jwt_tokens.issue(
        SECRET, agent_id=AGENT, role="agent", token_prefix="p", ttl_seconds=9
    )
    assert jwt_tokens.looks_like_jwt(token)
    assert jwt_tokens.looks_like_jwt(forge({"alg": "none"}, claims()))
    for other in ("agt_abcdefghijkl_" + "A" * 43, "", "a.b.c", "x" * 100):
        assert not jwt_tokens.looks_like_jwt(other)


def test_each_token_has_its_own_jti():
    a, _ = jwt_tokens.issue(SECRET, agent_id=AGENT, role="agent", token_prefix="p", ttl_seconds=60)
    b, _ = jwt_tokens.issue(SECRET, agent_id=AGENT, role="agent", token_prefix="p", ttl_seconds=60)
    assert jwt_tokens.decode(SECRET, a).jti != jwt_tokens.decode(SECRET, b).jti


def test_a_token_forged_here_is_accepted_so_the_rejections_below_mean_something():
    token = forge({"alg": "HS256", "typ": "JWT"}, claims())
    assert jwt_tokens.decode(SECRET, token).agent_id == AGENT


def test_alg_none_is_rejected():
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims()).encode())
    for token in (f"{header}.{body}.", f"{header}.{body}"):
        with pytest.raises(InvalidSession):
            jwt_tokens.decode(SECRET, token)


@pytest.mark.parametrize("alg", ["RS256", "HS512", "HS384", "ES256", "NONE", "hs256"])
def test_other_algorithm_headers_are_rejected(alg):
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, forge({"alg": alg, "typ": "JWT"}, claims()))


def test_genuine_hs512_with_the_right_key_is_rejected():
    token = jwt.encode(claims(), SECRET, algorithm="HS512")
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, token)


def test_wrong_key_is_rejected():
    token = forge({"alg": "HS256"}, claims(), key="x" * 64)
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, token)


def test_tampered_payload_is_rejected():
    token = forge({"alg": "HS256"}, claims())
    header, _body, sig = token.split(".")
    evil = _b64(json.dumps(claims(role="admin")).encode())
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, f"{header}.{evil}.{sig}")


def test_expired_is_rejected():
    now = int(time.time())
    token = forge({"alg": "HS256"}, claims(iat=now - 1000, exp=now - 10))
    with pytest.raises(InvalidSession, match="expired"):
        jwt_tokens.decode(SECRET, token)


def test_future_iat_is_rejected():
    now = int(time.time())
    token = forge({"alg": "HS256"}, claims(iat=now + 3600, exp=now + 7200))
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, token)


@pytest.mark.parametrize("missing", ["sub", "role", "iat", "exp", "jti", "tid"])
def test_missing_claim_is_rejected(missing):
    token = forge({"alg": "HS256"}, claims(**{missing: None}))
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, token)


def test_sub_that_is_not_a_uuid_is_rejected():
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, forge({"alg": "HS256"}, claims(sub="admin")))


@pytest.mark.parametrize(
    "token", ["", "abc", "a.b", "a.b.c", "...", "agt_abcdefghijkl_" + "A" * 43]
)
def test_garbage_is_rejected(token):
    with pytest.raises(InvalidSession):
        jwt_tokens.decode(SECRET, token)


# --- Verifier: decode once per token string -------------------------------------------------


def test_verifier_checks_a_token_once_then_answers_from_memory(monkeypatch):
    token, _ = jwt_tokens.issue(
        SECRET, agent_id=AGENT, role="agent", token_prefix="a" * 12, ttl_seconds=60
    )
    calls: list[str] = []
    real = jwt.decode

    def counting(t: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(t)
        return real(t, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting)
    verifier = jwt_tokens.Verifier(SECRET)
    first = verifier.claims(token)
    assert verifier.claims(token) == first
    assert first.agent_id == AGENT
    assert calls == [token]


def test_verifier_refuses_what_decode_refuses_and_remembers_none_of_it():
    verifier = jwt_tokens.Verifier(SECRET)
    wrong_key = forge({"alg": "HS256", "typ": "JWT"}, claims(), key="x" * 64)
    for _ in range(2):
        with pytest.raises(InvalidSession, match="invalid session token"):
            verifier.claims(wrong_key)
    assert verifier._known == {}


def test_verifier_refuses_a_remembered_token_once_it_expires(monkeypatch):
    token = forge({"alg": "HS256", "typ": "JWT"}, claims(exp=int(time.time()) + 30))
    verifier = jwt_tokens.Verifier(SECRET)
    verifier.claims(token)
    later = time.time() + 31
    monkeypatch.setattr(time, "time", lambda: later)
    with pytest.raises(InvalidSession, match="session expired"):
        verifier.claims(token)
    assert token not in verifier._known


def test_verifier_forgets_the_oldest_past_its_capacity():
    verifier = jwt_tokens.Verifier(SECRET, capacity=2)
    tokens = [
        jwt_tokens.issue(
            SECRET, agent_id=AGENT, role="agent", token_prefix="a" * 12, ttl_seconds=60
        )[0]
        for _ in range(3)
    ]
    for token in tokens:
        verifier.claims(token)
    assert list(verifier._known) == tokens[1:]
