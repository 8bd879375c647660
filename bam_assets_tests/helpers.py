"""What the tests share besides fixtures: the real files in ../shared/test-data/real and samtools as
the oracle, the settings of a test instance, and materializing partitions through Dagster."""

import io
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.cli.main import main
from bam_assets.model.source_stream import source_of
from bam_assets.orchestration.definitions import ingest_resources
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import IngestSettings, ReadingSettings, StoreSettings
from bam_assets.reading.stream import open_reads_stream
from bam_assets.stats.cycle_quality import CycleQuality
from bam_assets.stats.distributions import distribution_queries
from bam_assets.storage.store import StoreSession

REAL_DATA = Path(__file__).resolve().parents[2] / "shared" / "test-data" / "real"
CRAM_REFERENCE = REAL_DATA / "samtools_mpileup.ref.fa"
# The shared CRAM was written against a longer chromosome 17 than the 4200-bp excerpt beside it:
# samtools itself cannot regenerate its MD/NM tags and fails, so both sides decode with
# decode_md=0 (the stored tags are kept as they are).
CRAM_FORMAT_OPTIONS = ["decode_md=0"]
REAL_FILES = sorted(
    path.name for path in REAL_DATA.iterdir() if path.suffix in {".bam", ".cram", ".sam"}
)


def samtools_input(path: Path) -> list[str]:
    """The input arguments of any samtools command for ``path``: the CRAM gets its reference."""
    if path.suffix == ".cram":
        return [
            "--input-fmt-option",
            f"reference={CRAM_REFERENCE}",
            "--input-fmt-option",
            CRAM_FORMAT_OPTIONS[0],
            str(path),
        ]
    return [str(path)]


def samtools_view(path: Path, *arguments: str) -> str:
    """What ``samtools view --no-PG`` prints for ``path`` (the oracle)."""
    return pysam.view(*arguments, "--no-PG", *samtools_input(path))


def samtools_view_bytes(path: Path, *arguments: str) -> bytes:
    """``samtools_view`` as bytes: what it prints need not be UTF-8."""
    text = samtools_view(path, *arguments)
    return text if isinstance(text, bytes) else text.encode()


def cli_bytes(*argv: str) -> bytes:
    """What ``bam-assets ARGV`` prints on stdout, as bytes (it may print bytes that are not
    UTF-8, as samtools does); it must exit 0."""
    buffer = io.BytesIO()
    with redirect_stdout(io.TextIOWrapper(buffer, encoding="utf-8")) as out:
        assert main(list(argv)) == 0
        out.flush()
    return buffer.getvalue()


def bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every BGZF block, read from the BSIZE field of each block header."""
    blocks, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset + 16 : offset + 18], "little") + 1
        blocks.append((offset, size))
        offset += size
    return blocks


def ingest_directly(path: Path, key: str, database: Path, reading: ReadingSettings) -> int:
    """Stores ``path`` as partition ``key`` as the ``reads`` asset and its IO manager do (the
    stream into one transaction, the quality per cycle beside it), without a Dagster run;
    returns the rows stored. Raises AlignmentReadError when the file cannot be read."""
    stream = open_reads_stream(path, key, reading.reader_options())
    with write_session(database) as session:
        result = session.replace_partition(source_of(stream), stream, [CycleQuality()])
    return result.read_count


def settings_for(
    root: Path,
    database: Path,
    reading: dict | None = None,
    store: dict | None = None,
    **overrides,
) -> IngestSettings:
    """An instance watching ``root`` and storing into ``database``, reading the shared CRAM with
    its reference. ``reading`` and ``store`` override fields of those groups (e.g.
    ``reading={"chunk_size": 500}``); other keywords are top-level settings (``on_removed=…``)."""
    return IngestSettings(
        roots=[str(root)],
        reading=ReadingSettings(
            **{
                "reference": str(CRAM_REFERENCE),
                "format_options": CRAM_FORMAT_OPTIONS,
                **(reading or {}),
            }
        ),
        store=StoreSettings(**{"database": str(database), **(store or {})}),
        **overrides,
    )


@contextmanager
def read_session(where: IngestSettings | Path | str) -> Iterator[StoreSession]:
    """A read-only session on the store of ``settings`` (its tables) or on a database file."""
    if isinstance(where, IngestSettings):
        store = StoreResource(settings=where.store, table_prefix=where.prefix)
    else:
        store = StoreResource(settings=StoreSettings(database=str(where)))
    with store.session(read_only=True) as session:
        yield session


@contextmanager
def write_session(database: Path | str) -> Iterator[StoreSession]:
    """A writable session on a database file (unprefixed tables)."""
    store = StoreResource(settings=StoreSettings(database=str(database)))
    with store.session() as session:
        yield session


def write_distributions(session: StoreSession, key: str, coverage_window: int) -> dict[str, int]:
    """Stores the partition's distribution tables as the ``read_distributions`` asset does;
    returns the row count of each."""
    queries = distribution_queries(
        session.tables, session.header_text(key), coverage_window=coverage_window
    )
    return {
        query.name: session.replace_partition_rows(
            query.table, key, query.select_sql, query.parameters
        )
        for query in queries
    }


def materialize_partition(
    settings: IngestSettings,
    key: str,
    instance: dg.DagsterInstance,
    raise_on_error: bool = True,
    assets: list | None = None,
    resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Registers ``key`` and materializes it through the real asset and IO manager (or through
    ``assets``), with the instance's resources (sources, store, IO manager) and ``resources``."""
    if not instance.has_dynamic_partition(settings.partitions_name, key):
        instance.add_dynamic_partitions(settings.partitions_name, [key])
    return dg.materialize(
        assets or [build_reads_asset(settings)],
        partition_key=key,
        instance=instance,
        resources={**ingest_resources(settings), **(resources or {})},
        raise_on_error=raise_on_error,
    )


def ingest_files(settings: IngestSettings, keys: list[str]) -> IngestSettings:
    """Materializes ``keys`` of ``settings`` on a throwaway instance (for module-scoped data)."""
    instance = dg.DagsterInstance.ephemeral()
    for key in keys:
        materialize_partition(settings, key, instance)
    return settings


def run_python(script: str, timeout: float, **popen) -> subprocess.CompletedProcess:
    """Runs ``script`` in a fresh interpreter and returns what it did; one still running after
    ``timeout`` seconds is killed and fails the test (a hang must never hang the suite)."""
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(script)],
            capture_output=True,
            text=True,
            timeout=timeout,
            **popen,
        )
    except subprocess.TimeoutExpired as expired:
        pytest.fail(f"still running after {timeout} s (killed): {expired.stderr!r}"[-2000:])
