"""Bad input, one case each: the run fails fast, names the file and the cause in plain words, and
changes nothing in the database.

Every case is a small builder that writes one bad file (or folder, or link) where a good file was.
Each case runs twice: as a new partition (no rows may appear) and over a partition that already
holds good rows (they must survive byte for byte). Another partition ingested first must never
change, the failure must be recorded on the instance (what the UI shows) and the CLI must exit
non-zero naming the file.
"""

import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.cli.main import main
from bam_assets.reading.synthetic_bam import write_synthetic_bam
from bam_assets_tests import hostile
from bam_assets_tests.helpers import (
    REAL_DATA,
    bgzf_blocks,
    materialize_partition,
    settings_for,
    store_connection,
)

GOOD_SAM = (
    "@HD\tVN:1.6\tSO:unsorted\n@SQ\tSN:chr1\tLN:1000\n"
    "r1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\tNM:i:0\n"
    "r2\t16\tchr1\t5\t60\t4M\t*\t0\t0\tTTGA\tIIII\tNM:i:1\tXS:Z:x\n"
)


def big_bam(path: Path) -> bytes:
    """A 20k-read BAM (about 75 BGZF blocks), so damage can sit in its middle."""
    return write_synthetic_bam(path, 20_000, seed=11).read_bytes()


def zero_bytes(path: Path, work: Path) -> None:
    path.write_bytes(b"")


def text_named_bam(path: Path, work: Path) -> None:
    path.write_text("This is a note, not an alignment.\nIt was saved with the wrong name.\n")


def random_bytes(path: Path, work: Path) -> None:
    path.write_bytes(random.Random(6).randbytes(50_000))


def truncated_mid_block(path: Path, work: Path) -> None:
    data = big_bam(work / "whole.bam")
    offset, size = bgzf_blocks(data)[40]
    path.write_bytes(data[: offset + size // 2])


def truncated_at_block_boundary(path: Path, work: Path) -> None:
    data = big_bam(work / "whole.bam")
    offset, _ = bgzf_blocks(data)[40]
    path.write_bytes(data[:offset])  # whole blocks only, but no EOF marker


def corrupt_block_in_the_middle(path: Path, work: Path) -> None:
    data = bytearray(big_bam(work / "whole.bam"))
    offset, size = bgzf_blocks(bytes(data))[40]
    data[offset + size - 8] ^= 0xFF  # the block's CRC32 no longer matches its data
    path.write_bytes(bytes(data))


def corrupt_deflate_data(path: Path, work: Path) -> None:
    data = bytearray(big_bam(work / "whole.bam"))
    offset, _ = bgzf_blocks(bytes(data))[40]
    data[offset + 40 : offset + 104] = bytes(64)
    path.write_bytes(bytes(data))


def write_cram(path: Path, work: Path) -> Path:
    """A CRAM of 200 reads against a generated 2 kb reference; returns the reference."""
    rng = random.Random(5)
    sequence = "".join(rng.choice("ACGT") for _ in range(2000))
    reference = work / "ref.fa"
    lines = "\n".join(sequence[i : i + 60] for i in range(0, len(sequence), 60))
    reference.write_text(f">chrT\n{lines}\n")
    pysam.faidx(str(reference))
    records = [
        f"r{i}\t0\tchrT\t{1 + 5 * i}\t60\t50M\t*\t0\t0\t{sequence[5 * i : 5 * i + 50]}\t{'I' * 50}"
        for i in range(200)
    ]
    sam = work / "for_cram.sam"
    sam.write_text(
        "@HD\tVN:1.6\tSO:coordinate\n@SQ\tSN:chrT\tLN:2000\n" + "\n".join(records) + "\n"
    )
    pysam.view("-C", "-T", str(reference), "-o", str(path), str(sam), catch_stdout=False)
    return reference


def cram_without_its_reference(path: Path, work: Path) -> None:
    reference = write_cram(path, work)
    reference.unlink()  # the @SQ UR: tag points here: htslib's last local resort is gone too
    Path(f"{reference}.fai").unlink()


def malformed_sam_line(path: Path, work: Path) -> None:
    path.write_text(GOOD_SAM + "r3\tnotaflag\tchr1\t9\n")


def invalid_sam_tag(path: Path, work: Path) -> None:
    path.write_text(GOOD_SAM + "r3\t0\tchr1\t9\t60\t4M\t*\t0\t0\tACGT\tIIII\tNMi1\n")


def invalid_bam_tag(path: Path, work: Path) -> None:
    source = write_synthetic_bam(work / "whole.bam", 500, seed=12)
    with pysam.libcbgzf.BGZFile(str(source), "rb") as handle:
        raw = handle.read()
    at = raw.find(b"RGZrg1\x00", 10_000)
    with pysam.libcbgzf.BGZFile(str(path), "wb") as handle:
        handle.write(raw[: at + 2] + b"?" + raw[at + 3 :])  # an RG tag of unknown type '?'


def hostile_file(name: str) -> Callable[[Path, Path], None]:
    """A builder writing the hostile file ``name`` (``bam_assets_tests.hostile``) to ``path``."""

    def build(path: Path, work: Path) -> None:
        path.write_bytes(hostile.CASES[name].build(work).read_bytes())

    return build


def folder(path: Path, work: Path) -> None:
    path.mkdir()


def symlink_loop(path: Path, work: Path) -> None:
    path.symlink_to(path)


def missing(path: Path, work: Path) -> None:
    pass


@dataclass(frozen=True)
class BadInput:
    build: Callable[[Path, Path], None]
    name: str
    cause: str  # a regular expression for the plain-words cause
    reading: dict = field(default_factory=dict)  # overrides of the reading settings


CASES = {
    "zero-byte": BadInput(zero_bytes, "sample.bam", r"empty \(0 bytes\), not a BAM/CRAM/SAM"),
    "text-named-bam": BadInput(text_named_bam, "sample.bam", r"not a BAM/CRAM/SAM file.*text"),
    "random-bytes": BadInput(random_bytes, "sample.bam", r"not a BAM/CRAM/SAM file.*binary"),
    "truncated-mid-block": BadInput(truncated_mid_block, "sample.bam", r"truncated"),
    "truncated-at-block-boundary": BadInput(
        truncated_at_block_boundary,
        "sample.bam",
        r"truncated.*end-of-file marker.*set the reading option allow_missing_eof",
    ),
    "damaged-block-near-the-start": BadInput(
        hostile_file("bad-magic"), "sample.bam", r"block at byte \d+: invalid block header"
    ),
    "block-over-64-kib": BadInput(
        hostile_file("inflate-over-64k"), "sample.bam", r"inflates to more than the 64 KiB"
    ),
    "plain-gzip-bam": BadInput(
        hostile_file("plain-gzip"), "sample.bam", r"plain gzip, not BGZF.*samtools view -b"
    ),
    "corrupt-block-crc": BadInput(
        corrupt_block_in_the_middle, "sample.bam", r"corrupt compressed block at byte \d+: CRC32"
    ),
    "corrupt-block-deflate": BadInput(
        corrupt_deflate_data, "sample.bam", r"corrupt compressed block at byte \d+: .*decompress"
    ),
    "cram-reference-missing": BadInput(
        cram_without_its_reference,
        "sample.cram",
        r"CRAM reference not found for chrT.*never downloaded",
        reading={"reference": None, "format_options": []},
    ),
    "malformed-sam-line": BadInput(
        malformed_sam_line, "sample.sam", r"malformed SAM line 5: it has 4 tab-separated fields"
    ),
    "invalid-sam-tag": BadInput(
        invalid_sam_tag, "sample.sam", r"malformed SAM line 5: invalid tag 'NMi1'"
    ),
    "invalid-bam-tag": BadInput(
        invalid_bam_tag, "sample.bam", r"record \d+ \(read 'read\d+'\) has invalid tag data"
    ),
    "folder": BadInput(folder, "sample.bam", r"is a directory, not an alignment file"),
    "symlink-loop": BadInput(symlink_loop, "sample.bam", r"symlink"),
    "missing": BadInput(missing, "sample.bam", r"No alignment file .* 'sample.bam'"),
}


def write_good(path: Path, work: Path) -> dict:
    """A good file under the same name; returns the reading settings it needs."""
    if path.suffix == ".sam":
        path.write_text(GOOD_SAM)
    elif path.suffix == ".cram":
        return {"reference": str(write_cram(path, work)), "format_options": []}
    else:
        write_synthetic_bam(path, 1_500, seed=13)
    return {}


def fingerprint(database: Path, key: str) -> tuple:
    """Everything stored for one partition, hashed: its reads, its cycle sums and files row."""
    with store_connection(database) as connection:
        reads = connection.execute(
            "SELECT count(*), sum(hash(rec_no, qname, flag, rname, pos, mapq, cigar, rnext, pnext,"
            " tlen, seq, qual, tags, end_pos, read_length)) FROM reads WHERE key = ?",
            [key],
        ).fetchall()
        cycles = connection.execute(
            "SELECT count(*), sum(hash(fragment, cycle, bases, quality_sum)) "
            "FROM reads_cycle_quality WHERE key = ?",
            [key],
        ).fetchall()
        files = connection.execute(
            "SELECT key, path, fingerprint, read_count, ingested_at FROM files WHERE key = ?", [key]
        ).fetchall()
    return reads[0], cycles[0], files


def clear(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


@pytest.mark.parametrize("had_rows", [False, True], ids=["new-partition", "had-rows"])
@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_bad_input_fails_fast_naming_file_and_cause_and_changes_nothing(
    case: BadInput, had_rows: bool, tmp_path: Path, instance, monkeypatch
):
    root, work = tmp_path / "in", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    database = tmp_path / "reads.sqlite"
    shutil.copy(REAL_DATA / "umitools_paired.bam", root / "other.bam")
    materialize_partition(settings_for(root, database), "other.bam", instance)
    other_before = fingerprint(database, "other.bam")
    target = root / case.name
    if had_rows:
        good_settings = settings_for(root, database, reading=write_good(target, work))
        materialize_partition(good_settings, case.name, instance)
        clear(target)
    previous = fingerprint(database, case.name)
    case.build(target, work)

    started = time.monotonic()
    settings = settings_for(root, database, reading=case.reading)
    result = materialize_partition(settings, case.name, instance, raise_on_error=False)
    elapsed = time.monotonic() - started

    assert not result.success
    assert elapsed < 30
    [failure] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    description = failure.dagster_event.step_failure_data.user_failure_data.description
    assert str(target) in description
    assert re.search(case.cause, description), description
    # what the UI shows: the partition's latest planned materialization belongs to a failed run
    # whose step failure carries the message, and no materialization was recorded
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.FAILURE
    planned = instance.get_latest_planned_materialization_info(settings.reads_key, case.name)
    assert planned.run_id == result.run_id
    assert not instance.all_logs(result.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)

    assert fingerprint(database, "other.bam") == other_before
    assert fingerprint(database, case.name) == previous
    if had_rows:
        assert previous[0][0] > 0 and previous[1][0] > 0 and len(previous[2]) == 1
    else:
        assert previous == ((0, None), (0, None), [])


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_cli_exits_non_zero_naming_the_file(case: BadInput, tmp_path: Path, monkeypatch, capsys):
    root, work = tmp_path / "in", tmp_path / "work"
    root.mkdir()
    work.mkdir()
    target = root / case.name
    case.build(target, work)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    database = tmp_path / "cli.sqlite"
    arguments = ["ingest", str(target), "--db", str(database)]
    started = time.monotonic()
    exit_code = main(arguments)
    assert time.monotonic() - started < 30
    error = capsys.readouterr().err
    assert exit_code != 0, error
    assert str(target) in error
