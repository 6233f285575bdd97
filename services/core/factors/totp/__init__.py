"""TOTP (RFC 6238): the pure algorithm (``otp``) and the factor built on it."""
