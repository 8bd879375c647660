"""Finding alignment files under watched roots and describing them on disk.

Nothing here opens a file with pysam: this is file-system work only (listing, stat, a sampled
fingerprint), cheap enough for a sensor tick over thousands of files.
"""

import fnmatch
import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from bam_assets.reading.partition_keys import partition_key_for_path

DEFAULT_PATTERNS = ("*.bam", "*.cram", "*.sam")
_FINGERPRINT_SAMPLE_BYTES = 1 << 20


class SourceNotFoundError(LookupError):
    """A partition key that names no file under the configured roots."""


@dataclass(frozen=True)
class AlignmentFile:
    """One file below a root, with the partition key derived from its relative path."""

    key: str
    root: Path
    path: Path


@dataclass(frozen=True)
class FileStat:
    """What the files table records about a file on disk."""

    size_bytes: int
    mtime: datetime
    fingerprint: str


def find_alignment_files(
    roots: Sequence[str | Path], patterns: Sequence[str] = DEFAULT_PATTERNS
) -> Iterator[AlignmentFile]:
    """Yields every regular file under ``roots`` whose name matches one of ``patterns``.

    Directories are walked in sorted order without following symlinked directories, so a symlink
    loop cannot make the walk run forever.
    """
    for root in roots:
        root_path = Path(root).absolute()
        for directory, subdirectories, names in os.walk(root_path):
            subdirectories.sort()
            for name in sorted(names):
                if not any(fnmatch.fnmatch(name, pattern) for pattern in patterns):
                    continue
                path = Path(directory) / name
                if path.is_file():
                    yield AlignmentFile(partition_key_for_path(root_path, path), root_path, path)


def _candidates(key: str, roots: Sequence[str | Path]) -> list[tuple[Path, Path]]:
    """(root, root/key) for each root that ``key`` names a path inside of (``..`` resolved)."""
    pairs = []
    for root in roots:
        root_path = Path(root).absolute()
        candidate = root_path / key
        if Path(os.path.normpath(candidate)).is_relative_to(root_path):
            pairs.append((root_path, candidate))
    return pairs


def resolve_partition_key(
    key: str, roots: Sequence[str | Path], patterns: Sequence[str] = DEFAULT_PATTERNS
) -> AlignmentFile:
    """Finds the file under ``roots`` whose partition key is ``key``.

    A key that is the relative path verbatim is found with one ``stat``; a shortened or escaped key
    needs a walk of the roots. A key is only ever resolved to a file inside a root, so a partition
    registered by hand cannot make a run read anything else.
    """
    candidates = _candidates(key, roots)
    for root_path, candidate in candidates:
        if (
            candidate.is_file()
            and candidate.resolve().is_relative_to(root_path.resolve())
            and partition_key_for_path(root_path, candidate) == key
        ):
            return AlignmentFile(key, root_path, candidate)
    for found in find_alignment_files(roots, patterns):
        if found.key == key:
            return found
    for _, candidate in candidates:
        if candidate.is_dir():
            raise SourceNotFoundError(
                f"{candidate} (partition key {key!r}) is a directory, not an alignment file."
            )
        if candidate.is_symlink() and not candidate.exists():
            raise SourceNotFoundError(
                f"{candidate} (partition key {key!r}) is a symlink that leads nowhere "
                "(a symlink loop or a dangling link)."
            )
    searched = ", ".join(str(Path(root).absolute()) for root in roots) or "(no roots configured)"
    expected = " or ".join(os.path.normpath(candidate) for _, candidate in candidates)
    where = f" ({expected} does not exist)" if expected else ""
    raise SourceNotFoundError(
        f"No alignment file under {searched} has partition key {key!r}{where}: "
        "the file was moved or removed, or the key was registered for another root "
        "(keys never reach outside the roots)."
    )


def stat_file(path: Path) -> FileStat:
    """Size, modification time and a sampled content fingerprint of ``path``.

    The fingerprint hashes the size with the first and last MiB, not the whole file: a file of
    hundreds of GB must be cheap to fingerprint on every sensor tick, and any rewrite of a BGZF
    file changes its tail (the EOF block's predecessor) or its size.
    """
    stat = path.stat()
    digest = hashlib.blake2b(str(stat.st_size).encode(), digest_size=16)
    with path.open("rb") as handle:
        digest.update(handle.read(_FINGERPRINT_SAMPLE_BYTES))
        if stat.st_size > _FINGERPRINT_SAMPLE_BYTES:
            handle.seek(max(_FINGERPRINT_SAMPLE_BYTES, stat.st_size - _FINGERPRINT_SAMPLE_BYTES))
            digest.update(handle.read(_FINGERPRINT_SAMPLE_BYTES))
    return FileStat(
        size_bytes=stat.st_size,
        mtime=datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc),
        fingerprint=digest.hexdigest(),
    )
