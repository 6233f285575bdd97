"""The in-process API key cache: secrets still checked every time, revocation seen after the TTL."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from services.core import apikeys
from services.core.plumbing.db import Base

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_db():
    engine = create_engine("sqlite://")
    Base.metadata.create_all(engine)
    return engine, sessionmaker(engine, expire_on_commit=False)


def test_a_cached_key_still_needs_its_secret():
    engine, sessions = make_db()
    with sessions.begin() as s:
        key = apikeys.create_key(s, "login", ("challenge",), NOW)
    cache = apikeys.KeyCache(ttl=60)
    assert cache.authenticate(engine, key.plaintext).scope_set == frozenset({"challenge"})
    assert cache.authenticate(engine, key.plaintext[:-1] + ("A" if key.plaintext[-1] != "A" else "B")) is None
    assert cache.authenticate(engine, "tfa_nosuchkey_secret") is None
    assert cache.authenticate(engine, "garbage") is None


def test_a_revoked_key_stops_working_once_the_ttl_has_passed():
    engine, sessions = make_db()
    with sessions.begin() as s:
        key = apikeys.create_key(s, "login", ("challenge",), NOW)
    cache = apikeys.KeyCache(ttl=0.2)
    assert cache.authenticate(engine, key.plaintext) is not None
    with sessions.begin() as s:
        assert apikeys.revoke_key(s, key.id, NOW)
    time.sleep(0.25)
    assert cache.authenticate(engine, key.plaintext) is None


def test_ttl_zero_reads_the_database_every_time():
    engine, sessions = make_db()
    with sessions.begin() as s:
        key = apikeys.create_key(s, "login", ("challenge",), NOW)
    cache = apikeys.KeyCache(ttl=0)
    assert cache.authenticate(engine, key.plaintext) is not None
    with sessions.begin() as s:
        apikeys.revoke_key(s, key.id, NOW)
    assert cache.authenticate(engine, key.plaintext) is None
