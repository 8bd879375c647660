"""Peak memory of a whole ingest does not grow with the size of the file."""

import subprocess
import sys
from pathlib import Path

import pytest

from bam_assets.reading.synthetic_bam import write_synthetic_bam

_MEASURE = """
import resource, sys
from bam_assets.cli.main import main
status = main(["ingest", sys.argv[1], "--db", sys.argv[2]])
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
sys.exit(status)
"""


def peak_rss_mb(bam: Path, database: Path, dagster_home: Path) -> int:
    dagster_home.mkdir()
    completed = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(bam), str(database)],
        capture_output=True,
        text=True,
        check=True,
        env={"DAGSTER_HOME": str(dagster_home), "PATH": "/usr/bin:/bin"},
    )
    return int(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_peak_memory_is_flat_in_file_size(tmp_path: Path):
    small = write_synthetic_bam(tmp_path / "small.bam", 200_000, seed=11)
    large = write_synthetic_bam(tmp_path / "large.bam", 800_000, seed=12)
    small_peak = peak_rss_mb(small, tmp_path / "small.sqlite", tmp_path / "home_small")
    large_peak = peak_rss_mb(large, tmp_path / "large.sqlite", tmp_path / "home_large")
    # Four times the reads; a whole-file buffer would add ~250 MB. Allow 60 MB of noise
    # (allocator, DuckDB buffer pool warming up).
    assert large_peak - small_peak < 60, (small_peak, large_peak)
