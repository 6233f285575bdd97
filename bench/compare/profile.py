"""Where an API worker's time goes under load: py-spy samples, folded into a short table.

``record(pid, seconds, out)`` runs ``py-spy record --format raw`` (collapsed stacks, idle
frames excluded) on one process; ``summarize(out)`` prints the frames with the largest
inclusive share of the samples, restricted to interesting modules, so RESULTS.md can show
the hot spots without a flame graph viewer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = f"{Path(__file__).resolve().parents[2]}/"  # this checkout, whatever its folder
FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def py_spy() -> str | None:
    exe = Path(sys.executable).with_name("py-spy")
    return str(exe) if exe.exists() else shutil.which("py-spy")


def record(pid: int, seconds: float, out: Path) -> bool:
    exe = py_spy()
    if exe is None:
        return False
    proc = subprocess.run(
        [exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        capture_output=True, text=True, timeout=seconds + 30,
    )
    if proc.returncode != 0 or not out.exists():
        print(f"py-spy failed: {proc.stderr[-500:]}", file=sys.stderr)
        return False
    return True


def _label(frame: str) -> str:
    m = FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    file = m.group("file")
    for marker in ("site-packages/", ROOT, "/lib/python3.11/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{m.group('func')} ({file})"


def summarize(raw: Path, top: int = 25) -> list[tuple[str, float, float]]:
    """(frame, inclusive %, self %) for the ``top`` frames by inclusive share."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [_label(f) for f in stack.split(";")]
        for f in set(frames):
            inclusive[f] += n
        own[frames[-1]] += n
    if not total:
        return []
    rows = [(f, 100 * c / total, 100 * own[f] / total) for f, c in inclusive.most_common(400)]
    keep = [r for r in rows if not r[0].startswith(("<module>", "run (", "_bootstrap", "main ("))]
    return keep[:top]


def by_self(raw: Path, top: int = 15) -> list[tuple[str, float]]:
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        own[_label(stack.split(";")[-1])] += int(count)
    return [(f, 100 * c / total) for f, c in own.most_common(top)] if total else []


if __name__ == "__main__":
    for frame, inc, self_ in summarize(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 40):
        print(f"{inc:5.1f}% {self_:5.1f}%  {frame}")
