"""What the tests share besides fixtures: the real files in ../shared/test-data/real and samtools as
the oracle, the settings of a test instance, and materializing partitions through Dagster."""

import io
import os
import random
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Sequence
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


def samtools_view(path: Path, *arguments: str, regions: Sequence[str] = ()) -> str:
    """What ``samtools view --no-PG ARGUMENTS PATH REGIONS`` prints (the oracle)."""
    return pysam.view(*arguments, "--no-PG", *samtools_input(path), *regions)


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
    database: Path | str,
    reading: dict | None = None,
    store: dict | None = None,
    **overrides,
) -> IngestSettings:
    """An instance watching ``root`` and storing into the local store ``database`` (or the
    store ``store`` says), reading the shared CRAM with
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


def copy_store(source: Path, target: Path) -> Path:
    """A copy of the local store ``source`` (its catalog file and its data folder) at ``target``,
    to write into while ``source`` stays as it is; a local store may be moved or copied whole."""
    shutil.copyfile(source, target)
    shutil.copytree(f"{source}.files", f"{target}.files")
    return target


def data_dir_of(settings: IngestSettings) -> Path:
    """The folder of the store's Parquet files."""
    if settings.store.catalog == "postgres":
        return Path(settings.store.lake.data_path)
    return Path(f"{settings.store.database}.files")


def store_of(where: IngestSettings | Path | str) -> StoreResource:
    """The store of ``settings`` (its tables), or the local store of a catalog file."""
    if isinstance(where, IngestSettings):
        return StoreResource(settings=where.store, table_prefix=where.prefix)
    return StoreResource(settings=StoreSettings(database=str(where)))


@contextmanager
def read_session(where: IngestSettings | Path | str) -> Iterator[StoreSession]:
    """A read-only session on the store of ``settings`` (its tables) or of a catalog file."""
    with store_of(where).session(read_only=True) as session:
        yield session


@contextmanager
def store_connection(where: IngestSettings | Path | str, write: bool = False) -> Iterator:
    """A DuckDB connection on which the store's tables need no prefix, as a test checks (or,
    ``write``, tampers with) what was stored: read-only in one snapshot unless ``write``."""
    with store_of(where).session(read_only=not write) as session:
        yield session.connection


def cli_store_arguments(settings: IngestSettings, monkeypatch) -> list[str]:
    """The CLI options that select the store of ``settings``: ``--db FILE``, or ``--lake`` with
    the Postgres catalog and data path in the environment (set through ``monkeypatch``)."""
    store = settings.store
    if store.catalog == "postgres":
        monkeypatch.setenv("BAM_ASSETS_LAKE_CATALOG", store.lake.catalog)
        monkeypatch.setenv("BAM_ASSETS_LAKE_DATA_PATH", store.lake.data_path)
        return ["--lake"]
    return ["--db", store.database]


@contextmanager
def write_session(where: IngestSettings | Path | str) -> Iterator[StoreSession]:
    """A writable session on the store of ``settings`` or of a catalog file (unprefixed
    tables)."""
    with store_of(where).session() as session:
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


# Reference names a region has to be careful with: a colon and a '*' in a name (GRCh38's HLA
# contigs), a name that is also 'name:range' of another one, an alternative name (AN).
MANY_CONTIG_NAMES = [f"chr{index}" for index in range(1, 31)] + [
    "HLA-A*01:01:01:01",
    "chrA",
    "chrA:1-100",
    "chrUn_KI270302v1",
    "chrEmpty",
]
MANY_CONTIG_ALIAS = ("chr30", "thirty")


def write_many_contigs(folder: Path, records: int = 3000, seed: int = 11) -> tuple[Path, Path]:
    """A coordinate-sorted, indexed BAM over 35 contigs (one without reads) and its FASTA
    reference (indexed), written with a fixed seed for region and filter tests.

    Its records exercise htslib's overlap rules: spliced reads (long N) and deletions that start
    far left of a region, unmapped reads placed beside their mates (flag 4 with a position, with
    and without a CIGAR), a CIGAR of soft clips only (a 1-base span), unplaced reads at the
    end; and every flag bit, MAPQ 0-60 and 255, three read groups and records without one. The
    unsorted SAM it was sorted from stays beside it (``many_contigs.sam``). Returns (bam, fasta).
    """
    rng = random.Random(seed)
    lengths = {name: rng.randint(8_000, 40_000) for name in MANY_CONTIG_NAMES}
    fasta = folder / "many_contigs.fa"
    with fasta.open("w") as out:
        for name, length in lengths.items():
            out.write(f">{name}\n{''.join(rng.choices('ACGT', k=length))}\n")
    pysam.faidx(str(fasta))
    header = ["@HD\tVN:1.6\tSO:unsorted"]
    for name, length in lengths.items():
        alias = f"\tAN:{MANY_CONTIG_ALIAS[1]}" if name == MANY_CONTIG_ALIAS[0] else ""
        header.append(f"@SQ\tSN:{name}\tLN:{length}{alias}")
    header += [f"@RG\tID:rg{index}\tSM:s{index}" for index in (1, 2, 3)]
    placed = [name for name in MANY_CONTIG_NAMES if name != "chrEmpty"]
    lines = []
    for index in range(records):
        name = rng.choice(placed)
        length = rng.randint(20, 120)
        pos = rng.randint(1, lengths[name] - 5_000)
        roll = rng.random()
        cigar = f"{length}M"
        if roll < 0.05:
            cigar = f"{length // 2}M{rng.randint(500, 4_000)}N{length - length // 2}M"
        elif roll < 0.10:
            cigar = f"{length // 2}M{rng.randint(1, 50)}D{length - length // 2}M"
        elif roll < 0.13:
            cigar = f"5S{length - 10}M5S"
        elif roll < 0.14:
            cigar = f"{length}S"
        flag = rng.choice((0, 16, 99, 147, 83, 163, 256, 272, 1024, 1040, 512, 2048, 2064))
        if roll > 0.95:  # an unmapped read placed beside its mate, some keeping a CIGAR
            flag = rng.choice((69, 133, 4, 4 | 16))
            cigar = cigar if roll > 0.98 else "*"
        mapq = 0 if flag & 4 else rng.choice((0, 1, 10, 20, 30, 60, 255))
        read_group = rng.choice(("\tRG:Z:rg1", "\tRG:Z:rg2", "\tRG:Z:rg3", ""))
        seq = "".join(rng.choices("ACGT", k=length))
        lines.append(
            f"r{index:05d}\t{flag}\t{name}\t{pos}\t{mapq}\t{cigar}\t=\t{pos}\t0\t{seq}\t"
            f"{'I' * length}\tNM:i:{rng.randint(0, 3)}{read_group}"
        )
    for index in range(records // 50):
        lines.append(f"u{index:05d}\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\tRG:Z:rg{1 + index % 3}")
    sam = folder / "many_contigs.sam"
    sam.write_text("\n".join(header + lines) + "\n")
    bam = folder / "many_contigs.bam"
    pysam.sort("-o", str(bam), str(sam))
    pysam.index(str(bam))
    return bam, fasta


MULTIQC_VERSION = "1.35"


def multiqc_executable() -> Path:
    """MultiQC in a virtualenv of its own (its dependencies are not ours), created once and
    cached: ``$BAM_ASSETS_MULTIQC_VENV``, else ``~/.cache/bam-assets/multiqc-<version>``.
    Creating it needs PyPI; running it does not (see ``run_multiqc``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    venv = Path(
        os.environ.get("BAM_ASSETS_MULTIQC_VENV")
        or cache / "bam-assets" / f"multiqc-{MULTIQC_VERSION}"
    )
    stamp = venv / ".installed"  # written last: a half-made virtualenv is made again
    if not stamp.exists():
        shutil.rmtree(venv, ignore_errors=True)
        venv.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", f"multiqc=={MULTIQC_VERSION}"],
            check=True,
        )
        stamp.touch()
    return venv / "bin" / "multiqc"


def run_multiqc(folder: Path, output: Path) -> None:
    """``multiqc`` over ``folder`` into ``output``, offline: no version check, no AI summary."""
    subprocess.run(
        [
            str(multiqc_executable()),
            "--force",
            "--quiet",
            "--no-version-check",
            "--no-ai",
            "--outdir",
            str(output),
            str(folder),
        ],
        check=True,
        env={**os.environ, "MULTIQC_NO_VERSION_CHECK": "1"},
        capture_output=True,
    )


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
