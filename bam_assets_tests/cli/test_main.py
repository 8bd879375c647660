"""The CLI as a user runs it: ingest through Dagster, then list and view from DuckDB."""

import shutil
import subprocess
import sys
from pathlib import Path

import pysam
import pytest

from bam_assets.cli.main import main
from bam_assets_tests.bam_bytes import DEFAULT_TEXT, bam, bam_header, bam_record, tag_char, tag_text
from bam_assets_tests.helpers import REAL_DATA, cli_bytes, samtools_view, samtools_view_bytes


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    database = tmp_path / "cli.sqlite"
    monkeypatch.setenv("BAM_ASSETS_DB", str(database))
    return database


def run_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bam_assets", *arguments], capture_output=True, text=True
    )


def test_ingest_folder_then_list_and_view(tmp_path: Path, cli_env: Path, capsys):
    folder = tmp_path / "in"
    (folder / "nested").mkdir(parents=True)
    shutil.copy(REAL_DATA / "umitools_paired.bam", folder / "nested" / "paired.bam")
    shutil.copy(REAL_DATA / "pysam_example_btag.sam", folder / "b tags.sam")

    assert main(["ingest", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[:2] for line in lines] == [
        [lines[0].split("\t")[0], "5 reads"],
        ["nested/paired.bam", "8451 reads"],
    ]
    assert lines[0].startswith("b_tags.sam-")

    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    assert "nested/paired.bam\tBAM\t8451 reads\t" + str(folder / "nested" / "paired.bam") in listing

    assert main(["view", "-h", "nested/paired.bam"]) == 0
    assert capsys.readouterr().out == samtools_view(REAL_DATA / "umitools_paired.bam", "-h")
    assert main(["view", str(folder / "b tags.sam")]) == 0
    assert capsys.readouterr().out == samtools_view(REAL_DATA / "pysam_example_btag.sam")


def test_cram_with_reference_through_the_console_script(tmp_path: Path, cli_env: Path):
    ingest = run_cli(
        "ingest",
        str(REAL_DATA / "samtools_mpileup.1.cram"),
        "--reference",
        str(REAL_DATA / "samtools_mpileup.ref.fa"),
        "--input-fmt-option",
        "decode_md=0",
    )
    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stdout.startswith("samtools_mpileup.1.cram\t569 reads\t")
    view = run_cli("view", "-h", "samtools_mpileup.1.cram")
    assert view.stdout == samtools_view(REAL_DATA / "samtools_mpileup.1.cram", "-h")


def test_failing_file_is_named_and_exit_status_is_nonzero(tmp_path: Path, cli_env: Path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(REAL_DATA / "umitools_paired.bam", folder / "good.bam")
    (folder / "bad.bam").write_bytes(b"this is not an alignment file\n")

    result = run_cli("ingest", str(folder), str(tmp_path / "missing.bam"))

    assert result.returncode == 1
    assert "good.bam\t8451 reads" in result.stdout
    assert f"FAILED {folder / 'bad.bam'}:" in result.stderr
    # The cause in words first: no Dagster class name, htslib's own lines after it.
    assert "dagster._core" not in result.stderr and "Failure:" not in result.stderr
    lines = result.stderr.splitlines()
    failed = next(i for i, line in enumerate(lines) if line.startswith(f"FAILED {folder}"))
    assert not any(line.startswith("[E::") for line in lines[:failed]), result.stderr
    assert f"FAILED {tmp_path / 'missing.bam'}: no such file" in result.stderr
    assert run_cli("list").stdout.count("\n") == 1


def test_view_of_unknown_key_says_so(cli_env: Path):
    assert main(["ingest", str(REAL_DATA / "pbbam_empty.bam")]) == 0
    with pytest.raises(SystemExit, match="No ingested file has key or path 'nope.bam'"):
        main(["view", "nope.bam"])


def test_ingesting_a_subfolder_after_its_parent_warns_of_two_keys(tmp_path: Path, cli_env: Path):
    lane = tmp_path / "run" / "lane1"
    lane.mkdir(parents=True)
    shutil.copy(REAL_DATA / "pysam_example_btag.sam", lane / "x.sam")
    first = run_cli("ingest", str(tmp_path / "run"))
    assert first.returncode == 0 and "warning" not in first.stderr
    second = run_cli("ingest", str(lane))
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("x.sam\t5 reads")
    assert f"warning: {lane / 'x.sam'} is now stored twice, as x.sam and as lane1/x.sam" in (
        second.stderr
    )


def test_bytes_that_are_not_utf8_come_back_out_of_view_as_samtools_prints_them(
    tmp_path: Path, cli_env: Path, capsys
):
    header = bam_header(DEFAULT_TEXT + b"@CO\tLatin-1 caf\xe9\n")
    records = [
        bam_record(b"caf\xe9", tags=tag_text(b"XZ", b"\xe9t\xe9") + tag_char(b"XA", b"\xff")),
        bam_record(b"q", seq="ACGTACGT", cigar="8M", qual=bytes(range(93, 101))),
        bam_record(b"u", tags=tag_text(b"XU", "\uf7e9 UTF-8".encode())),
    ]
    path = tmp_path / "latin1.bam"
    path.write_bytes(bam(b"".join(records), header))
    assert main(["ingest", str(path)]) == 0
    capsys.readouterr()
    assert cli_bytes("view", "-h", "latin1.bam") == samtools_view_bytes(path, "-h")
    stats = pysam.stats(str(path)).splitlines()
    sn = [line for line in stats if line.startswith("SN\t")]
    assert cli_bytes("stats", "latin1.bam", "--sn").decode().splitlines() == sn


def test_everything_the_store_writes_lives_in_the_folder_of_db(tmp_path: Path, monkeypatch):
    """``--db PATH``: the catalog, its data folder and its locks, all beside PATH; a path given
    to a command wins over a key of the same name."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.chdir(tmp_path)
    database = tmp_path / "runs" / "run7.sqlite"
    source = tmp_path / "in" / "paired.bam"
    source.parent.mkdir()
    shutil.copy(REAL_DATA / "umitools_paired.bam", source)
    assert main(["ingest", str(source), "--db", str(database)]) == 0
    assert main(["view", "-c", str(source), "--db", str(database)]) == 0
    written = {
        path.relative_to(tmp_path).parts[0]
        for path in tmp_path.rglob("*")
        if path.is_file() and not path.is_relative_to(tmp_path / "dagster_home")
    }
    assert written == {"in", "runs"}
    assert {path.name for path in database.parent.iterdir()} <= {
        "run7.sqlite",
        "run7.sqlite-wal",
        "run7.sqlite-shm",
        "run7.sqlite.files",
        "run7.sqlite.locks",
    }
    assert list((database.parent / "run7.sqlite.files" / "main" / "reads").glob("*.parquet"))
    # a file named like the stored key, in the working folder: the path wins (and it was never
    # ingested), not the partition keyed paired.bam
    shutil.copy(REAL_DATA / "pysam_example_btag.sam", tmp_path / "paired.bam")
    with pytest.raises(SystemExit, match=f"No ingested file has key or path '{tmp_path}/paired"):
        main(["view", "-c", "paired.bam", "--db", str(database)])
