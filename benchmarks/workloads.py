"""The peers that ``bench_ingest.py`` runs next to ``bam-assets ingest``, one per process.

Each subcommand reads one BAM and prints the number of records it read (or stored) on stdout;
``bench_ingest.py`` pins the process to the CPUs under test and measures it from outside. The
DuckDB peers write one table ``reads`` into a fresh database with the settings the ingest gives
itself (``--threads`` = the CPUs the process may use, ``--memory-limit`` = the ingest's
``memory_limit``) and end with ``CHECKPOINT``, so the file holds everything they stored:

- ``samtools-count BAM --threads N``: ``samtools view -c -@ N-1`` through pysam's bundled samtools,
  the decode floor (``-@`` counts threads *in addition to* the main one).
- ``oxbow-duckdb BAM DB``: oxbow's documented DuckDB recipe, ``ox.from_bam(...).with_tags()``
  (tag definitions discovered from the first 1024 records, oxbow's default) and
  ``DataSource.to_duckdb(connection)``, materialised by ``CREATE TABLE reads AS SELECT *``.
- ``polars-bio-duckdb BAM DB --tags NM,AS,...``: polars-bio's ``scan_bam`` with the tags named
  (polars-bio parses only the tags it is given), streamed by Polars' ``collect_batches`` (the
  streaming engine, as polars-bio's own sinks stream a LazyFrame) into DuckDB. Runs in its own
  virtualenv (polars-bio 0.36.2 needs ``pyarrow<25``; ``bench_ingest.py`` creates it).
- ``pysam-duckdb BAM DB``: a plain loop over pysam's ``AlignedSegment``s filling Python lists
  per batch, turned into an Arrow ``RecordBatch`` and inserted by DuckDB from a
  ``RecordBatchReader``; the optional fields as SAM prints them (one text column, as the ingest
  stores them).

Imports are lazy so that this file runs in any of the virtualenvs.
"""

import argparse
import os
import sys

# What SAM calls each field, and the Arrow type the pysam loop gives it.
_PYSAM_COLUMNS = (
    ("qname", "string"),
    ("flag", "int32"),
    ("rname", "string"),
    ("pos", "int64"),
    ("mapq", "int32"),
    ("cigar", "string"),
    ("rnext", "string"),
    ("pnext", "int64"),
    ("tlen", "int64"),
    ("seq", "string"),
    ("qual", "string"),
    ("tags", "string"),
)


def samtools_count(bam: str, threads: int) -> int:
    import pysam

    return int(pysam.view("-c", "-@", str(max(0, threads - 1)), bam).strip())


def _connect(database: str, threads: int, memory_limit: str):
    """DuckDB as the ingest opens it: ``threads`` and ``memory_limit`` at connection time."""
    import duckdb

    return duckdb.connect(database, config={"threads": threads, "memory_limit": memory_limit})


def _finish(connection) -> int:
    """The stored row count, after a CHECKPOINT that writes every row into the file."""
    count = connection.execute("SELECT count(*) FROM reads").fetchone()[0]
    connection.execute("CHECKPOINT")
    connection.close()
    return count


def _arrow_threads(threads: int) -> None:
    """Arrow's CPU pool sized to the CPUs given, as DuckDB's (it defaults to every CPU)."""
    import pyarrow as pa

    pa.set_cpu_count(threads)


def oxbow_duckdb(bam: str, database: str, threads: int, memory_limit: str, batch_size: int) -> int:
    """oxbow's recipe for DuckDB (its quickstart: ``rel = ds.to_duckdb(conn)``; tags by
    ``with_tags()``), stored with one ``CREATE TABLE ... AS SELECT`` over the relation."""
    import oxbow as ox

    _arrow_threads(threads)
    source = ox.from_bam(bam, batch_size=batch_size).with_tags()
    connection = _connect(database, threads, memory_limit)
    relation = source.to_duckdb(connection)
    relation.create("reads")
    return _finish(connection)


def polars_bio_duckdb(
    bam: str, database: str, threads: int, memory_limit: str, batch_size: int, tags: list[str]
) -> int:
    """polars-bio's ``scan_bam`` (tags named, types inferred by polars-bio) streamed into DuckDB.

    ``datafusion.execution.target_partitions`` is polars-bio's one parallelism knob (default 1);
    without a BAI index a BAM is one partition whatever it is set to. ``batch_size`` sets
    DataFusion's record batches and Polars' chunks alike.
    """
    os.environ.setdefault("TQDM_DISABLE", "1")  # polars-bio's progress bar on stderr
    os.environ.setdefault("POLARS_MAX_THREADS", str(threads))
    import polars_bio as pb
    import pyarrow as pa

    _arrow_threads(threads)
    pb.set_option("datafusion.execution.target_partitions", str(threads))
    pb.set_option("datafusion.execution.batch_size", str(batch_size))
    frames = pb.scan_bam(bam, tag_fields=tags).collect_batches(
        chunk_size=batch_size, engine="streaming"
    )
    first = next(frames).to_arrow()

    def batches():
        yield from first.to_batches()
        for frame in frames:
            yield from frame.to_arrow().to_batches()

    reader = pa.RecordBatchReader.from_batches(first.schema, batches())
    connection = _connect(database, threads, memory_limit)
    # As the ingest does: a bare Arrow C stream is read one batch at a time on this thread; a
    # RecordBatchReader is wrapped by duckdb-python 1.5 in a scanner that queues up to 1 GiB.
    connection.register("batches", reader.__arrow_c_stream__())
    connection.execute("CREATE TABLE reads AS SELECT * FROM batches")
    return _finish(connection)


def pysam_duckdb(bam: str, database: str, threads: int, memory_limit: str, batch_size: int) -> int:
    """A plain pysam loop: ``AlignedSegment`` attributes into lists, one Arrow batch per
    ``batch_size`` records, DuckDB inserting from a ``RecordBatchReader``.

    The optional fields are the tail of ``to_string()`` (htslib's SAM text), the one pysam call
    that gives every tag as SAM prints it; ``get_tags()`` gives Python values that would still
    have to be formatted (measured slower, RESULTS.md). ``threads`` is pysam's own argument
    (htslib's BGZF decompression pool), used only with more than one CPU as pysam does.
    """
    import pyarrow as pa
    import pysam

    _arrow_threads(threads)
    schema = pa.schema([(name, getattr(pa, kind)()) for name, kind in _PYSAM_COLUMNS])

    def batches():
        with pysam.AlignmentFile(bam, "rb", threads=threads) as alignments:
            columns: list[list] = [[] for _ in _PYSAM_COLUMNS]
            (qname, flag, rname, pos, mapq, cigar, rnext, pnext, tlen, seq, qual, tag) = columns
            for segment in alignments:
                qname.append(segment.query_name)
                flag.append(segment.flag)
                rname.append(segment.reference_name or "*")
                pos.append(segment.reference_start + 1)
                mapq.append(segment.mapping_quality)
                cigar.append(segment.cigarstring or "*")
                rnext.append(segment.next_reference_name or "*")
                pnext.append(segment.next_reference_start + 1)
                tlen.append(segment.template_length)
                seq.append(segment.query_sequence or "*")
                qual.append(segment.query_qualities_str or "*")
                fields = segment.to_string().split("\t", 11)
                tag.append(fields[11] if len(fields) > 11 else "")
                if len(qname) == batch_size:
                    yield pa.record_batch(columns, schema=schema)
                    for column in columns:
                        column.clear()
            if qname:
                yield pa.record_batch(columns, schema=schema)

    reader = pa.RecordBatchReader.from_batches(schema, batches())
    connection = _connect(database, threads, memory_limit)
    # As the ingest does: a bare Arrow C stream is read one batch at a time on this thread; a
    # RecordBatchReader is wrapped by duckdb-python 1.5 in a scanner that queues up to 1 GiB.
    connection.register("batches", reader.__arrow_c_stream__())
    connection.execute("CREATE TABLE reads AS SELECT * FROM batches")
    return _finish(connection)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    count = commands.add_parser("samtools-count", help="samtools view -c (the decode floor)")
    count.add_argument("bam")
    count.add_argument("--threads", type=int, default=1, help="CPUs given (-@ threads - 1)")
    for name in ("oxbow-duckdb", "polars-bio-duckdb", "pysam-duckdb"):
        peer = commands.add_parser(name)
        peer.add_argument("bam")
        peer.add_argument("db")
        peer.add_argument("--threads", type=int, default=1, help="DuckDB (and peer) threads")
        peer.add_argument("--memory-limit", default="64MB", help="DuckDB memory_limit")
        peer.add_argument("--batch-size", type=int, required=True, help="records per batch")
        if name == "polars-bio-duckdb":
            peer.add_argument("--tags", required=True, help="comma-separated tag names")
    arguments = parser.parse_args()
    if arguments.command == "samtools-count":
        records = samtools_count(arguments.bam, arguments.threads)
    else:
        common = (
            arguments.bam,
            arguments.db,
            arguments.threads,
            arguments.memory_limit,
            arguments.batch_size,
        )
        if arguments.command == "oxbow-duckdb":
            records = oxbow_duckdb(*common)
        elif arguments.command == "polars-bio-duckdb":
            records = polars_bio_duckdb(*common, [t for t in arguments.tags.split(",") if t])
        else:
            records = pysam_duckdb(*common)
    sys.stdout.write(f"{records}\n")


if __name__ == "__main__":
    main()
