"""API tokens: agt_<prefix>_<secret>; parse rejects anything else; Argon2id verification."""

from __future__ import annotations

import asyncio
import base64

import pytest

from agenthub.auth import api_tokens


def test_generate_format():
    new = api_tokens.generate()
    scheme, prefix, secret = new.token.split("_", 2)
    assert scheme == "agt"
    assert prefix == new.prefix
    assert secret == new.secret
    assert len(prefix) == 12
    assert all(c in api_tokens.PREFIX_ALPHABET for c in prefix)
    raw = base64.urlsafe_b64decode(secret + "=" * (-len(secret) % 4))
    assert len(raw) >= 32


def test_generate_is_random():
    tokens = {api_tokens.generate().token for _ in range(50)}
    prefixes = {t.split("_")[1] for t in tokens}
    assert len(tokens) == 50
    assert len(prefixes) == 50


def test_parse_round_trip():
    new = api_tokens.generate()
    parsed = api_tokens.parse(new.token)
    assert parsed is not None
    assert parsed.prefix == new.prefix
    assert parsed.secret == new.secret


def test_secret_may_contain_underscores():
    token = "agt_abcdefghijkl_" + "_" * 5 + "A" * 40
    parsed = api_tokens.parse(token)
    assert parsed is not None
    assert parsed.prefix == "abcdefghijkl"


GOOD_SECRET = "A" * 43


@pytest.mark.parametrize(
    "token",
    [
        "",
        "agt_",
        f"agt_abcdefghijk_{GOOD_SECRET}",  # prefix 11 chars
        f"agt_abcdefghijklm_{GOOD_SECRET}",  # prefix 13 chars
        f"agt_ABCDEFGHIJKL_{GOOD_SECRET}",  # upper-case prefix
        f"agt_abcdefghijkl_{'A' * 42}",  # secret too short
        f"agt_abcdefghijkl_{'A' * 129}",  # secret too long
        f"agt_abcdefghijkl_{'A' * 42}=",  # padding is not base64url
        f"agt_abcdefghijkl_{'A' * 42}+",
        f"xyz_abcdefghijkl_{GOOD_SECRET}",
        f"AGT_abcdefghijkl_{GOOD_SECRET}",
        f" agt_abcdefghijkl_{GOOD_SECRET}",
        f"agt_abcdefghijkl_{GOOD_SECRET}\n",
        f"agt_abcdefghijkl{GOOD_SECRET}",
        "eyJhbGciOiJIUzI1NiJ9.e30.sig",  # a JWT is not an API token
    ],
)
def test_parse_rejects_malformed(token):
    assert api_tokens.parse(token) is None


def test_is_prefix():
    assert api_tokens.is_prefix(api_tokens.generate().prefix)
    assert not api_tokens.is_prefix("short")
    assert not api_tokens.is_prefix("abcdefghijk!")
    assert not api_tokens.is_prefix("abcdefghijklm")


def test_hasher_uses_argon2id_with_the_design_parameters():
    async def run() -> tuple[str, bool, bool, bool]:
        hasher = api_tokens.TokenHasher(workers=1)
        try:
            stored = await hasher.hash("the-secret")
            return (
                stored,
                await hasher.verify(stored, "the-secret"),
                await hasher.verify(stored, "another-secret"),
                await hasher.verify(None, "the-secret"),
            )
        finally:
            hasher.close()

    stored, good, bad, unknown = asyncio.run(run())
    assert stored.startswith("$argon2id$")
    assert "m=19456,t=2,p=1" in stored
    assert "the-secret" not in stored
    assert good is True
    assert bad is False
    assert unknown is False


def test_verify_of_a_corrupt_hash_is_false_not_an_error():
    async def run() -> bool:
        hasher = api_tokens.TokenHasher(workers=1)
        try:
            return await hasher.verify("not-a-hash", "x")
        finally:
            hasher.close()

    assert asyncio.run(run()) is False
