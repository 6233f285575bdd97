"""What twofa keeps under ``var/`` is its owner's alone: directories 0700, files 0600.

New files get that from the umask ``twofa`` sets; ``tighten`` fixes what an older twofa
left readable by others (an old world-readable ``var/portal.db`` with password hashes).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

PRIVATE = 0o077  # the group and other bits a private file must not have


def tighten(var_dir: Path) -> list[Path]:
    """Remove group and other permissions from ``var_dir`` and everything under it that
    this user owns; symlinks are not followed. Returns what was changed."""
    if not var_dir.is_dir() or var_dir.is_symlink():
        return []
    changed: list[Path] = []
    uid = os.getuid()
    for path in [var_dir, *var_dir.rglob("*")]:
        try:
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or st.st_uid != uid or not st.st_mode & PRIVATE:
                continue
            if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                continue  # sockets and pipes: their directory being 0700 is what guards them
            os.chmod(path, stat.S_IMODE(st.st_mode) & ~PRIVATE, follow_symlinks=False)
            changed.append(path)
        except FileNotFoundError:
            continue  # removed meanwhile (a lock file, a broker's temporary file)
    return changed
