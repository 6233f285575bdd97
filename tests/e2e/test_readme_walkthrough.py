"""The README's "Using the API" walkthrough, run as the reader runs it: its shell blocks,
verbatim and in order, in bash against `twofa dev`, with curl and oathtool.

Only the port is the test's own (the README's `API=http://127.0.0.1:8000` line names a free
one), `.venv/bin/twofa` is this interpreter's twofa, and curl fails on a 4xx/5xx answer so
that a wrong step stops the script. The two `sleep 30` steps (a later TOTP time step) stay:
about a minute.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXTERNAL_DB
from tests.e2e.dev_process import BANNER, DevProcess, free_ports
from tests.e2e.stack import ROOT

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(300),
    pytest.mark.skipif(not shutil.which("oathtool") or not shutil.which("curl"),
                       reason="the walkthrough needs oathtool and curl (scripts/test installs oathtool)"),
]

README_API_LINE = "API=http://127.0.0.1:8000"
PREAMBLE = """set -euo pipefail
curl() { command curl --fail-with-body "$@"; }  # a 4xx/5xx answer stops the walkthrough
"""


def walkthrough_blocks(readme: str) -> list[str]:
    """The ```sh blocks of the "Using the API" section, up to the next level-2 heading."""
    section = readme.split("\n## Using the API\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```sh\n(.*?)^```", section, flags=re.DOTALL | re.MULTILINE)


def test_the_blocks_are_found():
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 3
    assert "".join(blocks).count(README_API_LINE) == 1


def twofa_wrapper(workdir: Path) -> None:
    """``.venv/bin/twofa`` in the walkthrough's directory: the twofa of this test run."""
    bin_dir = workdir / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    wrapper = bin_dir / "twofa"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m services.cli.main "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


def json_lines(output: str) -> list[dict]:
    found = []
    for line in output.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path, database_url: str):
    (port,) = free_ports(1)
    extra = {"TWOFA_DATABASE_URL": EXTERNAL_DB} if EXTERNAL_DB else {}
    dev = DevProcess.start(tmp_path, "--port", str(port), "--no-portal", **extra)
    try:
        dev.wait_for(BANNER)
        twofa_wrapper(tmp_path)
        script = "".join(walkthrough_blocks((ROOT / "README.md").read_text()))
        script = script.replace(README_API_LINE, f"API=http://127.0.0.1:{port}")
        env = dict(dev.env, PATH=os.environ["PATH"])
        result = subprocess.run(["bash", "-c", PREAMBLE + script], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=240, check=False)
    finally:
        dev.stop()
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    answers = json_lines(result.stdout)
    enroll, _scanned, activated, confirmed, *rest = answers
    assert enroll["token"]["state"] == "pending" and enroll["details"]["secret"]
    assert activated["token"]["state"] == "unconfirmed"
    assert confirmed["token"]["state"] == "active"
    # "details also say that a recovery token is ready and that the `sso` area is now protected"
    assert confirmed["details"]["recovery_token_available"] is True
    assert confirmed["details"]["areas_protected_by_default"] == ["sso"]
    tokens, challenge, selected, verified, outcome = rest[-5:]
    assert [t["state"] for t in tokens["tokens"]] == ["active"]
    assert challenge["status"] == "pending"
    assert verified["status"] == "verified" and outcome["status"] == "verified"
    assert selected["status"] == "pending" and selected["selected_type"] == "totp"
