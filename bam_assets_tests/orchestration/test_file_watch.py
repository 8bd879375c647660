"""``file_watch.decide`` on its own: which files of one listing to ingest, re-ingest or forget.

Pure bookkeeping over real files in tmp_path (it stats them) with a counting fingerprint; no
Dagster instance and no sensor.
"""

import base64
import hashlib
import json
import os
import zlib
from pathlib import Path

import pytest

from bam_assets.orchestration.file_watch import (
    WatchedFile,
    decide,
    decode_cursor,
    encode_cursor,
)
from bam_assets.reading.files import AlignmentFile


class Fingerprints:
    """A content hash that counts the files it was asked for."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, path: Path) -> str:
        self.calls.append(path.name)
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "watched"
    folder.mkdir()
    return folder


def write(root: Path, name: str, content: bytes, mtime_s: int = 1_000) -> Path:
    path = root / name
    path.write_bytes(content)
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))
    return path


def touch(path: Path, mtime_s: int) -> None:
    os.utime(path, ns=(mtime_s * 10**9, mtime_s * 10**9))


def listing(root: Path, *names: str) -> list[AlignmentFile]:
    return [AlignmentFile(name, root, root / name) for name in names]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_a_new_file_waits_one_tick_then_is_ingested_with_its_fingerprint(root: Path):
    sample = write(root, "sample.bam", b"reads")
    state: dict[str, WatchedFile] = {}
    fingerprint = Fingerprints()

    first = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert first.to_ingest == {} and first.waiting == 1 and first.removed_keys == []
    assert fingerprint.calls == []  # nothing is read before the file has settled
    assert state == {"sample.bam": WatchedFile(5, 1_000 * 10**9)}

    second = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert second.to_ingest == {"sample.bam": digest(sample)}
    assert second.waiting == 0
    assert state["sample.bam"] == WatchedFile(5, 10**12, digest(sample), 5, 10**12)

    third = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert third.to_ingest == {} and third.waiting == 0
    assert fingerprint.calls == ["sample.bam"]  # a settled, ingested file is not read again


def test_a_growing_file_waits_until_its_size_and_mtime_hold_still(root: Path):
    sample = write(root, "sample.bam", b"re")
    state: dict[str, WatchedFile] = {}
    fingerprint = Fingerprints()
    decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    write(root, "sample.bam", b"reads", mtime_s=1_001)  # still being written

    grew = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert grew.to_ingest == {} and grew.waiting == 1 and fingerprint.calls == []
    settled = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert settled.to_ingest == {"sample.bam": digest(sample)}


def ingested(root: Path, names: tuple[str, ...], fingerprint) -> dict[str, WatchedFile]:
    """The state after ``names`` were seen and ingested (two ticks)."""
    state: dict[str, WatchedFile] = {}
    decide(state, listing(root, *names), fingerprint, max_ingests=100)
    decision = decide(state, listing(root, *names), fingerprint, max_ingests=100)
    assert set(decision.to_ingest) == set(names)
    return state


def test_a_touched_but_identical_file_is_not_ingested_again(root: Path):
    sample = write(root, "sample.bam", b"reads")
    fingerprint = Fingerprints()
    state = ingested(root, ("sample.bam",), fingerprint)

    touch(sample, 2_000)  # same bytes, new mtime
    moved = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert moved.to_ingest == {} and moved.waiting == 1
    settled = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert settled.to_ingest == {} and settled.waiting == 0
    assert fingerprint.calls == ["sample.bam", "sample.bam"]  # read once to find it unchanged
    assert state["sample.bam"].ingested_mtime_ns == 2_000 * 10**9

    decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert fingerprint.calls == ["sample.bam", "sample.bam"]  # and not again


def test_a_changed_file_is_ingested_again_with_its_new_fingerprint(root: Path):
    sample = write(root, "sample.bam", b"reads")
    fingerprint = Fingerprints()
    state = ingested(root, ("sample.bam",), fingerprint)
    before = state["sample.bam"].ingested_fingerprint

    write(root, "sample.bam", b"other", mtime_s=2_000)  # same size, other bytes
    assert decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10).waiting == 1
    changed = decide(state, listing(root, "sample.bam"), fingerprint, max_ingests=10)
    assert changed.to_ingest == {"sample.bam": digest(sample)}
    assert changed.to_ingest["sample.bam"] != before
    assert state["sample.bam"].ingested_fingerprint == digest(sample)


def test_at_most_max_ingests_files_per_tick_and_the_rest_wait(root: Path):
    names = ("a.bam", "b.bam", "c.bam", "d.bam", "e.bam")
    for index, name in enumerate(names):
        write(root, name, bytes([index]) * 10)
    state: dict[str, WatchedFile] = {}
    fingerprint = Fingerprints()
    decide(state, listing(root, *names), fingerprint, max_ingests=2)

    first = decide(state, listing(root, *names), fingerprint, max_ingests=2)
    assert list(first.to_ingest) == ["a.bam", "b.bam"] and first.waiting == 3
    assert fingerprint.calls == ["a.bam", "b.bam"]  # the waiting ones are not read yet
    second = decide(state, listing(root, *names), fingerprint, max_ingests=2)
    assert list(second.to_ingest) == ["c.bam", "d.bam"] and second.waiting == 1
    third = decide(state, listing(root, *names), fingerprint, max_ingests=2)
    assert list(third.to_ingest) == ["e.bam"] and third.waiting == 0
    fourth = decide(state, listing(root, *names), fingerprint, max_ingests=2)
    assert fourth.to_ingest == {} and fourth.waiting == 0


def test_removed_keys_are_reported_only_for_files_that_were_ingested(root: Path):
    write(root, "kept.bam", b"kept")
    write(root, "gone.bam", b"gone")
    fingerprint = Fingerprints()
    state = ingested(root, ("kept.bam", "gone.bam"), fingerprint)
    write(root, "brief.bam", b"seen once")
    decide(state, listing(root, "kept.bam", "gone.bam", "brief.bam"), fingerprint, max_ingests=10)
    assert state["brief.bam"].ingested_fingerprint is None

    (root / "gone.bam").unlink()
    (root / "brief.bam").unlink()
    decision = decide(state, listing(root, "kept.bam"), fingerprint, max_ingests=10)
    assert decision.removed_keys == ["gone.bam"]  # brief.bam was never ingested
    assert set(state) == {"kept.bam"}  # both are forgotten
    again = decide(state, listing(root, "kept.bam"), fingerprint, max_ingests=10)
    assert again.removed_keys == []


def test_a_file_that_vanishes_after_the_listing_is_neither_stated_nor_removed(root: Path):
    write(root, "sample.bam", b"reads")
    fingerprint = Fingerprints()
    state = ingested(root, ("sample.bam",), fingerprint)
    stale = listing(root, "sample.bam")
    (root / "sample.bam").unlink()  # gone between the directory walk and its stat
    decision = decide(state, stale, fingerprint, max_ingests=10)
    assert decision.to_ingest == {} and decision.removed_keys == [] and decision.waiting == 0
    assert "sample.bam" in state


def test_the_cursor_round_trips_the_state():
    state = {
        "run1/a.bam": WatchedFile(10, 123, "f00d", 10, 123),
        "b name.sam": WatchedFile(0, 456),
        "c.cram": WatchedFile(7, 789, "beef", 6, 700),
    }
    cursor = encode_cursor(state)
    assert isinstance(cursor, str) and cursor.isascii()
    assert decode_cursor(cursor) == state
    assert decode_cursor(encode_cursor({})) == {}
    assert decode_cursor(None) == {} and decode_cursor("") == {}


def test_a_cursor_of_another_version_starts_afresh():
    payload = json.dumps({"version": 0, "files": {"a.bam": [1, 2, None, None, None]}})
    cursor = base64.b64encode(zlib.compress(payload.encode())).decode()
    assert decode_cursor(cursor) == {}
