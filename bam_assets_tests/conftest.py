"""Shared fixtures: the real files in ../shared/test-data/real, a test instance, a DuckDB path."""

from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.ingest_definitions import build_reads_asset
from bam_assets.ingest_settings import IngestSettings
from bam_assets.synthetic_bam import write_synthetic_bam

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


def bgzf_blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of every BGZF block, read from the BSIZE field of each block header."""
    blocks, offset = [], 0
    while offset < len(data):
        size = int.from_bytes(data[offset + 16 : offset + 18], "little") + 1
        blocks.append((offset, size))
        offset += size
    return blocks


def settings_for(root: Path, database: Path, **overrides) -> IngestSettings:
    return IngestSettings(
        roots=[str(root)],
        database=str(database),
        reference=str(CRAM_REFERENCE),
        format_options=CRAM_FORMAT_OPTIONS,
        **overrides,
    )


def materialize_partition(
    settings: IngestSettings,
    key: str,
    instance: dg.DagsterInstance,
    raise_on_error: bool = True,
    assets: list | None = None,
    resources: dict | None = None,
) -> dg.ExecuteInProcessResult:
    """Registers ``key`` and materializes it through the real asset and IO manager (or through
    ``assets``, with ``resources`` added to the ingest's)."""
    if not instance.has_dynamic_partition(settings.partitions_name, key):
        instance.add_dynamic_partitions(settings.partitions_name, [key])
    return dg.materialize(
        assets or [build_reads_asset(settings)],
        partition_key=key,
        instance=instance,
        resources={
            settings.sources_key: settings.sources(),
            settings.io_manager_key: settings.io_manager(),
            **(resources or {}),
        },
        raise_on_error=raise_on_error,
    )


def ingest_files(settings: IngestSettings, keys: list[str]) -> IngestSettings:
    """Materializes ``keys`` of ``settings`` on a throwaway instance (for module-scoped data)."""
    instance = dg.DagsterInstance.ephemeral()
    for key in keys:
        materialize_partition(settings, key, instance)
    return settings


@pytest.fixture
def instance():
    with dg.instance_for_test() as test_instance:
        yield test_instance


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "reads.duckdb"


@pytest.fixture(scope="session")
def synthetic_bam(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 20k-read generated BAM (fixed seed), shared by the tests that only read it."""
    return write_synthetic_bam(tmp_path_factory.mktemp("synthetic") / "synthetic.bam", 20_000)
