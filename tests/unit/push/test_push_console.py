"""The console push provider: the log line never shows the nonce or signatures."""

from __future__ import annotations

import json
import logging

from services.core.factors.push.sender import ConsolePushSender, PushMessage, sender_from_settings
from services.core.factors.push.login import presence_options


def test_console_sender_logs_without_secrets_and_writes_the_outbox_file(tmp_path, caplog):
    sender = ConsolePushSender(tmp_path / "outbox")
    data = {"nonce": "N" * 32, "signature": "SIG=", "capabilities_signature": "CAPSIG=", "serial": "PIPU1",
            "question": "Q?", "title": "T", "sslverify": "1", "url": "http://x/ttype/push"}
    with caplog.at_level(logging.INFO, logger="services.core.factors.push.sender"):
        assert sender.send(PushMessage("dev", data, 120, "T", "Q?")) == "console/1"
    text = caplog.text
    assert "PIPU1" in text and "N" * 32 not in text and "SIG=" not in text
    line = json.loads((tmp_path / "outbox" / "push.log").read_text().strip())
    assert line["data"] == data and line["ttl_seconds"] == 120


def test_console_is_the_default_provider(tmp_path):
    from services.core.plumbing.settings import Settings

    s = Settings(env="test", var_dir=tmp_path)
    assert isinstance(sender_from_settings(s), ConsolePushSender)
    assert s.push_is_poll_only is True


def test_presence_options_are_distinct_and_contain_the_answer():
    for _ in range(50):
        options, answer = presence_options("NUMERIC", 4)
        parts = options.split(",")
        assert len(set(parts)) == 4 and answer in parts and all(len(p) == 2 and p.isdigit() for p in parts)
    assert presence_options("NUMERIC", 0) == (None, None)
