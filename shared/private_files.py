"""Files with secrets or personal data are readable by their owner only.

The data directory holds databases (with their -wal/-shm), logs, the delivery spool, the JetStream
store and the NATS passwords: it is 0700 and everything in it 0600 (directories 0700). A process
that writes there first calls :func:`owner_only` (umask 077, so what it and its children create is
private), and the launcher calls :func:`make_private` on the whole directory at start, which also
repairs what an earlier version left readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def owner_only() -> None:
    """From now on, files and directories this process (and its children) creates are private."""
    os.umask(0o077)


def make_private(root: Path) -> int:
    """Create ``root`` if needed; make it and everything in it owner-only. Returns how many modes
    were changed. Symbolic links are left alone (their target is not ours to change)."""
    root.mkdir(parents=True, exist_ok=True)
    changed = 0
    for dirpath, _dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        changed += _chmod(here, DIR_MODE)
        for name in filenames:
            changed += _chmod(here / name, FILE_MODE)
    return changed


def _chmod(path: Path, mode: int) -> int:
    try:
        st = path.lstat()
    except FileNotFoundError:  # removed meanwhile (e.g. a SQLite -shm)
        return 0
    if stat.S_ISLNK(st.st_mode) or stat.S_IMODE(st.st_mode) == mode:
        return 0
    path.chmod(mode)
    return 1
