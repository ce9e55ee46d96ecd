"""Keyed hashes of henkilötunnus: the only form in which a person's identity code is stored or
matched outside the intake record (e.g. a guardian's, to let a guardian signed in with strong
identification reach their own child's case).

``person_key(hetu)`` = HMAC-SHA256 of the normalised henkilötunnus under a secret key kept in a
file outside the databases (Settings ``pseudonym_key_file``, default ``<data_dir>/pseudonym.key``,
created with mode 0600 on first use). Without the key a stored hash cannot be turned back into a
henkilötunnus by trying all of them (there are few enough that a plain hash could be). Every
service of one installation reads the same key file, so their hashes match.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import threading
from pathlib import Path

from shared.settings import Settings

_KEY_BYTES = 32
_lock = threading.Lock()
_keys: dict[Path, bytes] = {}


def key_path(settings: Settings | None = None) -> Path:
    s = settings or Settings()
    return Path(s.pseudonym_key_file) if s.pseudonym_key_file else s.data_dir / "pseudonym.key"


def _key(path: Path) -> bytes:
    with _lock:
        key = _keys.get(path)
        if key is not None:
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes starting together cannot both write a key; the loser reads.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            key = path.read_bytes().strip()
        else:
            key = secrets.token_hex(_KEY_BYTES).encode()
            with os.fdopen(fd, "wb") as f:
                f.write(key)
        if len(key) < _KEY_BYTES:
            raise RuntimeError("pseudonym key file is too short")
        _keys[path] = key
        return key


def person_key(hetu: str) -> str:
    """The keyed hash (hex) of a henkilötunnus; the same code always gives the same key."""
    normalised = hetu.strip().upper()
    return hmac.new(_key(key_path()), normalised.encode(), hashlib.sha256).hexdigest()
