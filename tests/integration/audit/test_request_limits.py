"""Request size limits (services/api/limits.py): oversized bodies are a 413 and change nothing."""

from __future__ import annotations

from sqlalchemy import func, select

from services.core.models import OutboxEvent, Token


def count(ctx, model):
    with ctx.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_a_declared_oversized_body_is_refused_before_it_is_read(api, ctx, enroll_headers):
    limit = ctx.settings.max_body_bytes
    body = b'{"type": "totp", "description": "' + b"x" * limit + b'"}'
    r = api.post("/v1/users/alice/tokens", content=body,
                 headers={**enroll_headers, "Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json() == {"error": {"code": "too_large", "message": "request body too large"}}
    assert count(ctx, Token) == 0 and count(ctx, OutboxEvent) == 0


def test_a_chunked_body_without_length_is_cut_off_at_the_limit(api, ctx, enroll_headers):
    limit = ctx.settings.max_body_bytes

    def chunks():
        yield b'{"type": "totp", "description": "'
        for _ in range(limit // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    r = api.post("/v1/users/alice/tokens", content=chunks(),
                 headers={**enroll_headers, "Content-Type": "application/json"})
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert r.status_code == 413
    assert count(ctx, Token) == 0


def test_a_malformed_content_length_is_refused(api, enroll_headers):
    r = api.post("/v1/users/alice/tokens", content=b"{}",
                 headers={**enroll_headers, "Content-Type": "application/json", "Content-Length": "abc"})
    assert r.status_code in (400, 413)


def test_a_body_at_the_limit_is_accepted(api, ctx, enroll_headers):
    r = api.post("/v1/users/alice/tokens", json={"type": "totp", "description": "fits"}, headers=enroll_headers)
    assert r.status_code == 201
