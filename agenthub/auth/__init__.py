"""Credentials: API tokens (Argon2id-hashed) and the short-lived JWTs exchanged for them."""
