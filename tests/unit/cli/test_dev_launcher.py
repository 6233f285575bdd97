"""``twofa dev``'s choices that need no process: the children's environment, the port
check and the help text."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from services.cli.launcher import child_env
from services.cli.main import parser
from services.cli.readiness import Listener, PortUnavailable, ensure_free, http_ok, url
from services.core.plumbing.settings import Settings


def test_the_port_becomes_the_public_url_unless_it_is_set(tmp_path: Path):
    settings = Settings(env="dev", var_dir=tmp_path)
    assert child_env(settings, "redis://x", "127.0.0.1", 18000)["TWOFA_PUBLIC_URL"] == "http://127.0.0.1:18000"
    assert child_env(settings, "redis://x", "0.0.0.0", 18000)["TWOFA_PUBLIC_URL"] == "http://127.0.0.1:18000"
    explicit = Settings(env="dev", var_dir=tmp_path, public_url="https://2fa.example.org")
    assert child_env(explicit, "redis://x", "127.0.0.1", 18000).get("TWOFA_PUBLIC_URL") != "http://127.0.0.1:18000"


def test_an_answer_that_is_not_http_means_not_ready_yet():
    # What a connection that got the unbound port as its own reads: its request echoed.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]

        def echo() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(conn.recv(4096))

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        assert http_ok(f"http://127.0.0.1:{port}/portal/login")() is False
        thread.join(5)


def test_urls_for_clients_of_wildcard_and_ipv6_listeners():
    assert url("0.0.0.0", 8000, "/healthz") == "http://127.0.0.1:8000/healthz"
    assert url("::1", 8001) == "http://[::1]:8001"


def test_a_taken_port_is_named_with_the_flag_that_moves_it():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortUnavailable) as caught:
            ensure_free("127.0.0.1", [Listener("the portal", port, "--portal-port")])
    message = str(caught.value)
    assert f"port {port} on 127.0.0.1 is in use" in message and "--portal-port" in message
    assert "\n" not in message
    ensure_free("127.0.0.1", [Listener("the portal", port, "--portal-port")])  # free again


def test_dev_help_tells_about_the_portal_and_its_flags():
    (dev,) = [a for a in parser()._subparsers._group_actions[0].choices.items() if a[0] == "dev"]  # type: ignore[union-attr]
    text = dev[1].format_help()
    for words in ("portal", "--portal-port", "--no-portal", "TWOFA_PUBLIC_URL", "default: --port + 1"):
        assert words in text, words


@pytest.mark.parametrize("args, message", [
    (["dev", "--no-portal", "--portal-port", "9000"], "exclude each other"),
    (["dev", "--port", "9000", "--portal-port", "9000"], "must differ")])
def test_contradicting_dev_flags_are_refused(args, message):
    from services.cli.main import main

    with pytest.raises(SystemExit, match=message):
        main(args)
