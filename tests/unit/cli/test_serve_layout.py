"""``twofa serve --workers N`` on SQLite warns that one process serves more logins."""

from __future__ import annotations

import argparse
import logging

import pytest

from services.cli import main
from services.cli import serve as serving


@pytest.fixture
def served(monkeypatch, tmp_path):
    calls: list[dict[str, object]] = []
    monkeypatch.setattr(serving, "run", lambda host, port, workers, level: calls.append(
        {"workers": workers}))
    monkeypatch.setattr(main, "_logging", lambda settings: None)
    monkeypatch.setenv("TWOFA_ENV", "dev")
    monkeypatch.setenv("TWOFA_VAR_DIR", str(tmp_path))
    monkeypatch.setenv("TWOFA_METRICS_DIR", str(tmp_path / "metrics"))
    # serve names it in os.environ; setenv first so that the undo removes it again
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    return calls


def serve(workers: int) -> None:
    main.cmd_serve(argparse.Namespace(host="127.0.0.1", port=8000, workers=workers))


@pytest.mark.parametrize("url, workers, warned", [
    ("", 2, True),  # the embedded default is SQLite
    ("", 1, False),
    ("postgresql+psycopg://postgres@127.0.0.1:5432/x", 2, False),
])
def test_several_api_processes_on_sqlite_are_warned_about(served, monkeypatch, caplog, url, workers, warned):
    monkeypatch.setenv("TWOFA_DATABASE_URL", url)
    with caplog.at_level(logging.WARNING, logger="twofa.serve"):
        serve(workers)
    assert served and served[0]["workers"] == workers
    assert any("writer lock" in r.getMessage() for r in caplog.records) == warned
