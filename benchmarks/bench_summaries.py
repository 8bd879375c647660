"""How long the read statistics take next to the ingest of the same file.

Takes the synthetic 150-bp BAM of ``bench_ingest.py`` (default 1,000,000 reads, seed 7, cached in
``benchmarks/out``), ingests it with ``bam-assets ingest`` in a subprocess into a new local
store, then times each summary over it and prints a table with the ratio summaries / ingest. The
ingest and the summaries are pinned to the same CPUs (``--cpus 1``: CPU 0; DuckDB uses as many
threads as CPUs it may run on). Run: ``python benchmarks/bench_summaries.py --cpus 1`` (and
``--cpus 2``).
"""

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_ingest import _bam_assets, synthetic_bam

from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import IngestSettings, StoreSettings
from bam_assets.orchestration.summary_assets import distribution_pictures
from bam_assets.stats.distributions import distribution, distribution_queries
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.idxstats import idxstats
from bam_assets.stats.overview import OVERVIEW_TABLE, overview_rows, overview_sql
from bam_assets.stats.summary_numbers import summary_numbers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpus", type=int, default=1, help="CPUs to pin to (0 .. N-1)")
    arguments = parser.parse_args()
    os.sched_setaffinity(0, set(range(arguments.cpus)))
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        bam = synthetic_bam(arguments.reads, arguments.seed, read_length=150)
        database = root / "bench.sqlite"
        environment = {**os.environ, "DAGSTER_HOME": str(root / "dagster_home")}
        started = time.monotonic()
        subprocess.run(
            [_bam_assets(), "ingest", str(bam), "--db", str(database)],
            check=True,
            env=environment,
            stdout=subprocess.DEVNULL,
        )
        ingest_seconds = time.monotonic() - started
        # The summary assets' settings: every available CPU, the default memory_limit.
        settings = IngestSettings(roots=[folder])
        store = StoreResource(
            settings=StoreSettings(database=str(database), memory_limit=settings.store.memory_limit)
        )
        timings: list[tuple[str, float]] = []
        with store.session(all_cpus=True) as session:
            connection, tables = session.connection, session.tables
            records = session.list_files()[0].read_count

            def timed(name, work):
                begun = time.monotonic()
                work()
                timings.append((name, time.monotonic() - begun))

            def distributions() -> None:
                for query in distribution_queries(tables, session.header_text(key)):
                    session.replace_partition_rows(
                        query.table, key, query.select_sql, query.parameters
                    )

            def pictures() -> None:
                distribution_pictures(
                    lambda name: distribution(connection, tables, key, name),
                    session.header_text(key),
                    settings.coverage_window,
                )

            def overview() -> None:
                session.replace_table(OVERVIEW_TABLE, overview_sql(tables))
                overview_rows(connection, tables)

            key = bam.name
            timed("flagstat", lambda: flagstat(connection, tables, key))
            timed(
                "idxstats",
                lambda: idxstats(
                    connection, tables, key, session.file_row(key)[0], session.references(key)
                ),
            )
            timed("stats SN numbers", lambda: summary_numbers(connection, tables, key))
            timed("distributions", distributions)
            timed("pictures (matplotlib import included)", pictures)
            timed("overview", overview)
    total = sum(seconds for _, seconds in timings)
    out = sys.stdout
    out.write(f"# {records:,} records, {platform.processor() or platform.machine()}, ")
    out.write(f"pinned to {arguments.cpus} CPU(s), Python {platform.python_version()}\n")
    out.write("| step | seconds | / ingest |\n|---|---:|---:|\n")
    out.write(f"| ingest (bam-assets ingest, subprocess) | {ingest_seconds:.2f} | 1.00 |\n")
    for name, seconds in timings:
        out.write(f"| {name} | {seconds:.2f} | {seconds / ingest_seconds:.2f} |\n")
    out.write(f"| all summaries | {total:.2f} | {total / ingest_seconds:.2f} |\n")


if __name__ == "__main__":
    main()
