"""The console push provider on the embedded default (poll-only tokens)."""

from __future__ import annotations


def test_console_provider_writes_poll_only_pushes_to_the_outbox_file(world, enrolled, ctx, publisher, settings):
    """The embedded default: poll-only tokens, the console twin still shows every push."""
    import json

    from services.core.factors.push.sender import sender_from_settings
    from services.core.factors.push import delivery
    from shared.registry import parse_event

    token = enrolled()
    assert token.poll_only
    world.login()
    env, cmd = parse_event([e for e in publisher.published if e["type"] == "push.requested"][-1])
    assert delivery.send_push(ctx, env.event_id, cmd, sender_from_settings(settings)) == "sent"
    line = json.loads((settings.var_dir / "outbox" / "push.log").read_text().splitlines()[-1])
    assert line["data"]["serial"] == token.serial
    assert world.app.verify_challenge(token, line["data"], now=world.now)  # same message as the poll
    assert "push.sent" in publisher.types()
