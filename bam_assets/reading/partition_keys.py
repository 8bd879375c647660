"""Partition keys for alignment files.

A key is the file's path relative to its watched root, so it is stable across runs and readable in
the Dagster UI. Characters that break the UI, URLs or partition ranges (Dagster reserves ``...``
for ranges; control characters, spaces, quotes, brackets and commas confuse selections) are
replaced. Whenever the key is not the relative path verbatim, or the path is too long, a short hash
of the original relative path is appended, so two different files never share a key.
"""

import hashlib
import re
import unicodedata
from pathlib import Path

MAX_KEY_LENGTH = 120
_HASH_LENGTH = 10
_UNSAFE_CHARACTERS = re.compile(r"[^A-Za-z0-9._\-/+=@]")
_DOT_RUNS = re.compile(r"\.{2,}")
_SLASH_RUNS = re.compile(r"/{2,}")


def partition_key_for(relative_path: str) -> str:
    """Returns the partition key of a file given its path relative to its root (``/`` separated)."""
    ascii_path = (
        unicodedata.normalize("NFKD", relative_path).encode("ascii", "ignore").decode("ascii")
    )
    safe = _UNSAFE_CHARACTERS.sub("_", ascii_path)
    safe = _DOT_RUNS.sub(".", safe)
    safe = _SLASH_RUNS.sub("/", safe).strip("/")
    if safe == relative_path and len(safe) <= MAX_KEY_LENGTH:
        return safe
    digest = hashlib.blake2b(relative_path.encode("utf-8"), digest_size=8).hexdigest()
    prefix = safe[: MAX_KEY_LENGTH - _HASH_LENGTH - 1].rstrip("./") or "file"
    return f"{prefix}-{digest[:_HASH_LENGTH]}"


def partition_key_for_path(root: Path, path: Path) -> str:
    """Returns the partition key of ``path``, a file below ``root``."""
    return partition_key_for(path.relative_to(root).as_posix())
