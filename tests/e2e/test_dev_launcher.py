"""``twofa dev`` as a newcomer meets it: the banner means every process answers, the
ports and the push app's URL follow ``--port``, the portal can be moved or left out, a
busy port is one clear line, and Ctrl-C leaves nothing behind."""

from __future__ import annotations

import json
import socket
import stat
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.e2e.dev_process import BANNER, DevProcess, free_ports, listening, twofa

pytestmark = pytest.mark.e2e


def occupied(port: int) -> socket.socket:
    s = socket.socket()
    s.bind(("127.0.0.1", port))
    s.listen()
    return s


def push_enrollment_url(workdir: Path, api: str) -> str:
    key = twofa(workdir, "apikey", "create", "--name", "t", "--scopes", "enroll").stdout.splitlines()[-1]
    r = httpx.post(f"{api}/v1/users/alice/tokens", json={"type": "push", "description": "phone"},
                   headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert r.status_code == 201, r.text
    return r.json()["details"]["enrollment_url"]


def test_the_banner_comes_once_everything_answers_and_ctrl_c_leaves_nothing(tmp_path: Path):
    api_port, portal_port = free_ports(2)
    dev = DevProcess.start(tmp_path, "--port", str(api_port), "--portal-port", str(portal_port))
    try:
        line = dev.wait_for(BANNER)
        api = f"http://127.0.0.1:{api_port}"
        assert line.startswith(f"{BANNER}{api} ")
        # Right when the banner is printed, not a moment later: no retries here.
        with urllib.request.urlopen(f"{api}/healthz", timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{portal_port}/portal/login", timeout=5) as r:
            assert r.status == 200 and "Sign in" in r.read().decode()
        console = dev.console()
        assert f"portal on http://127.0.0.1:{portal_port}/portal/" in console
        assert console.count(BANNER) == 1
        ready = json.loads(urllib.request.urlopen(f"{api}/readyz", timeout=5).read())
        assert ready["ready"] is True

        # --port reaches the push app's address in the enrollment QR code.
        enrollment = push_enrollment_url(tmp_path, api)
        push_url = parse_qs(urlsplit(enrollment).query)["url"][0]
        assert push_url == f"{api}/ttype/push"
    finally:
        code = dev.stop()
    assert code == 0, dev.console()
    assert dev.leftovers() == []
    assert not listening(api_port) and not listening(portal_port)
    assert "Traceback" not in dev.console()
    # Everything it wrote (databases, keys, the outbox with codes, the broker's files) is private.
    var = tmp_path / "var"
    for path in (var, *var.rglob("*")):
        if not path.is_socket():
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, f"{path} {oct(path.stat().st_mode)}"


def test_no_portal_runs_beside_a_busy_portal_port_and_an_explicit_public_url_is_kept(tmp_path: Path):
    (api_port,) = free_ports(1)
    with occupied(api_port + 1):
        dev = DevProcess.start(tmp_path, "--port", str(api_port), "--no-portal",
                               TWOFA_PUBLIC_URL="https://2fa.example.org")
        try:
            dev.wait_for(BANNER)
            enrollment = push_enrollment_url(tmp_path, f"http://127.0.0.1:{api_port}")
            assert parse_qs(urlsplit(enrollment).query)["url"][0] == "https://2fa.example.org/ttype/push"
            assert "portal on" not in dev.console()
        finally:
            assert dev.stop() == 0
    assert dev.leftovers() == []


@pytest.mark.parametrize("busy, flag", [("api", "--port"), ("portal", "--portal-port")])
def test_a_busy_port_is_one_line_naming_it_and_the_flag(tmp_path: Path, busy: str, flag: str):
    api_port, portal_port = free_ports(2)
    taken = api_port if busy == "api" else portal_port
    with occupied(taken):
        result = twofa(tmp_path, "dev", "--port", str(api_port), "--portal-port", str(portal_port))
    assert result.returncode == 1
    lines = (result.stdout + result.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert str(taken) in lines[0] and flag in lines[0] and "in use" in lines[0]
    if busy == "portal":
        assert "--no-portal" in lines[0]
    assert not (tmp_path / "var" / "broker").exists()  # nothing was started

