"""No hang, ever: a damaged BAM fails within seconds, and a run stops on SIGTERM.

Each case runs in its own process with a time limit, so a hang fails the test instead of hanging
the suite. Before reading stopped using htslib's decompression threads and the read-ahead stopped
waiting unbounded, the first case hung in ``pysam.AlignmentFile`` (8 opens in 8) and the second
ignored SIGTERM for good.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bam_assets_tests.bam_bytes import bam_blocks, bam_header, good_records
from bam_assets_tests.helpers import bgzf_blocks, run_python


def damaged_bam(path: Path, block: int) -> Path:
    """A header block and eight one-record blocks; block ``block``'s magic bytes are damaged."""
    data = bam_blocks(bam_header(), *(good_records(1, i) for i in range(8)))
    offset, _ = bgzf_blocks(data)[block]
    damaged = bytearray(data)
    damaged[offset] ^= 0xFF
    path.write_bytes(bytes(damaged))
    return path


def test_a_damaged_block_fails_fast_through_the_resource_the_run_uses(tmp_path: Path):
    """The resource reads ahead and, before, opened BAM files with a decompression thread when a
    second CPU was there: that open waited forever on htslib's dead reader thread."""
    for block in (1, 2, 3):
        damaged_bam(tmp_path / f"damaged{block}.bam", block)
    result = run_python(
        f"""
        import time
        from bam_assets.orchestration import resources
        from bam_assets.orchestration.settings import ReadingSettings
        from bam_assets.reading.errors import AlignmentReadError

        resources.available_cpus = lambda: 2
        sources = resources.AlignmentSources(roots=[{str(tmp_path)!r}], reading=ReadingSettings())
        for attempt in range(4):
            for block in (1, 2, 3):
                started = time.monotonic()
                try:
                    for _ in sources.open_stream(f"damaged{{block}}.bam"):
                        pass
                except AlignmentReadError as error:
                    assert time.monotonic() - started < 10, error
                    print(error.cause)
        """,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    causes = result.stdout.splitlines()
    assert len(causes) == 12
    assert all("invalid block header" in cause for cause in causes), causes


STUCK_INGEST = textwrap.dedent(
    """
    import sys, threading
    from bam_assets.cli.main import main
    from bam_assets.orchestration import resources
    from bam_assets.reading import stream

    resources.available_cpus = lambda: 2  # the run reads ahead in a thread, as with two CPUs
    never = threading.Event()

    def stuck(path, options):
        # the reader thread blocks for good, as one stuck inside htslib would
        print("STUCK", flush=True)
        never.wait()
        yield

    stream.iter_read_batches = stuck
    sys.exit(main(sys.argv[1:]))
    """
)


def test_sigterm_stops_a_run_whose_reader_is_stuck(tmp_path: Path):
    """Dagster terminates a run with SIGTERM; its handler raises in the main thread, which must
    then not wait for the stuck reader thread."""
    bam = tmp_path / "sample.bam"
    bam.write_bytes(bam_blocks(bam_header(), good_records(2)))
    (tmp_path / "home").mkdir()
    process = subprocess.Popen(
        [sys.executable, "-c", STUCK_INGEST, "ingest", str(bam), "--db", str(tmp_path / "x.db")],
        env=os.environ | {"DAGSTER_HOME": str(tmp_path / "home")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while process.stdout.readline().strip() != "STUCK":
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(1)  # the main thread is now waiting for the reader's first batch
        process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError("the run ignored SIGTERM for 30 s") from None
        assert time.monotonic() - sent < 30
        assert process.returncode == 1
        assert f"FAILED {bam}" in stderr and "Interrupted" in stderr
    finally:
        process.kill()
        process.wait()
