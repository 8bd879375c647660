"""The baselines that ``bench_ingest.py`` runs next to ``bam-assets ingest``, one per process.

``python benchmarks/workloads.py samtools-count BAM`` counts records as ``samtools view -c``
(through pysam; the decode floor). ``python benchmarks/workloads.py oxbow-duckdb BAM DB`` streams
oxbow's Arrow batches, tags included, into a DuckDB table (``pip install -e '.[bench]'``).
"""

import argparse
import sys


def samtools_count(bam: str) -> int:
    import pysam

    return int(pysam.view("-c", bam).strip())


def oxbow_duckdb(bam: str, database: str) -> int:
    """oxbow's own recipe: a BAM data source with discovered tag definitions, its Arrow batches
    pulled by one ``CREATE TABLE ... AS SELECT`` in DuckDB."""
    import duckdb
    import oxbow
    import pyarrow as pa

    source = oxbow.from_bam(bam).with_tags()
    batches = source.batches()
    first = next(batches)
    reader = pa.RecordBatchReader.from_batches(
        pa.record_batch(first).schema, (pa.record_batch(b) for b in _chain(first, batches))
    )
    connection = duckdb.connect(database)
    connection.register("oxbow_batches", reader)
    connection.execute("CREATE TABLE reads AS SELECT * FROM oxbow_batches")
    count = connection.execute("SELECT count(*) FROM reads").fetchone()[0]
    connection.close()
    return count


def _chain(first, rest):
    yield first
    yield from rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    count = commands.add_parser("samtools-count")
    count.add_argument("bam")
    oxbow_parser = commands.add_parser("oxbow-duckdb")
    oxbow_parser.add_argument("bam")
    oxbow_parser.add_argument("db")
    arguments = parser.parse_args()
    if arguments.command == "samtools-count":
        records = samtools_count(arguments.bam)
    else:
        records = oxbow_duckdb(arguments.bam, arguments.db)
    sys.stdout.write(f"{records}\n")


if __name__ == "__main__":
    main()
