"""Keyed pseudonyms of personal identifiers (HMAC-SHA256), for indexes that must find a person
again without holding the identifier.

A plain SHA-256 of a henkilötunnus is reversed by hashing the whole code space (a few hundred
million codes: minutes on a laptop). With a secret key outside the database, a copy of the
database alone reveals nothing. The key is 32 random bytes in a file (``Settings.pseudonym_key_file``,
by default ``<data dir>/pseudonym.key``), created on first use with mode 0600. Lose the key and
the pseudonyms cannot be recomputed: back it up with the database, but store it apart from it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

KEY_BYTES = 32

_key: bytes | None = None
_path: Path | None = None


def key_file_of(settings: object) -> Path:
    """The key file a Settings object names (``pseudonym_key_file``, else ``<data_dir>/pseudonym.key``)."""
    configured = getattr(settings, "pseudonym_key_file", None)
    if configured:
        return Path(configured)
    return Path(getattr(settings, "data_dir", "var")) / "pseudonym.key"


def load_key(path: Path) -> bytes:
    """The key in ``path``, created (0600, 32 random bytes) when there is none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Written whole under a temporary name, then linked into place: services starting together
        # never read a half-written key, and the first one's key wins.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(KEY_BYTES))
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
    key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise ValueError(f"pseudonym key file {path} is shorter than {KEY_BYTES} bytes")
    return key


def use_key_file(path: Path) -> None:
    """Use the key in ``path`` from now on in this process (a service calls it at start-up)."""
    global _key, _path
    _key, _path = load_key(path), path


def _current_key() -> bytes:
    if _key is None:
        from shared.settings import Settings

        use_key_file(key_file_of(Settings()))
    assert _key is not None
    return _key


def keyed(key: bytes) -> Callable[[str], str]:
    """A pseudonym function under an explicit key (tools, tests, a key rotation)."""
    return lambda text: hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def pseudonym(text: str) -> str:
    """HMAC-SHA256 of ``text`` under the deployment's key, as 64 hex characters."""
    return hmac.new(_current_key(), text.encode(), hashlib.sha256).hexdigest()


def digest(data: bytes) -> str:
    """HMAC-SHA256 of raw bytes (e.g. a submission's content), as 64 hex characters."""
    return hmac.new(_current_key(), data, hashlib.sha256).hexdigest()


def normalise_hetu(hetu: str) -> str:
    """The henkilötunnus as it is compared: surrounding space removed, letters upper-case."""
    return hetu.strip().upper()


def person_key(hetu: str) -> str:
    """The pseudonym of a person known by henkilötunnus (the same person gives the same key)."""
    return pseudonym("hetu:" + normalise_hetu(hetu))
