"""Without Chromium the browser tests are a visible skip on a developer's machine and a
failure in CI, never a quiet green run that tested less."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.e2e.stack import ROOT

pytestmark = pytest.mark.e2e


def collect_browser_tests(**env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != "CI"}
    base.update(TWOFA_TEST_CHROMIUM="/nonexistent/chromium", **env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs", "tests/e2e/portal"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=120, check=False)


def test_in_ci_a_missing_chromium_fails_the_run():
    result = collect_browser_tests(CI="true")
    assert result.returncode != 0
    assert "/nonexistent/chromium is missing" in result.stdout and "CI must run the browser tests" in result.stdout


def test_locally_a_missing_chromium_is_a_skip_with_its_reason():
    result = collect_browser_tests()
    assert result.returncode in (0, 5), result.stdout
    assert "SKIPPED" in result.stdout and "/nonexistent/chromium is missing" in result.stdout
