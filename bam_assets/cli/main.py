"""``bam-assets``: ingest, list and regenerate alignment files from the command line.

A thin layer over what the assets call: ``ingest`` materializes the ``reads`` asset in process;
the other commands read the store.
"""

import argparse
import sys
from collections.abc import Sequence

from bam_assets.cli.ingest import ingest
from bam_assets.cli.migrate import add_migrate_command
from bam_assets.cli.sql import add_sql_command
from bam_assets.cli.store_commands import list_files, multiqc, summary, view
from bam_assets.orchestration.project_paths import default_backend, default_database
from bam_assets.storage.store import StoreBusyError, StoreConfigError


def _parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--db",
        default=default_database(),
        help="the store's catalog file; its Parquet files go in DB.files beside it (default: "
        "$BAM_ASSETS_DB, else data/bam_assets.sqlite in the project)",
    )
    database.add_argument(
        "--lake",
        dest="backend",
        action="store_const",
        const="postgres",
        default=default_backend(),
        help="use the Postgres catalog of $BAM_ASSETS_LAKE_CATALOG and the data folder "
        "$BAM_ASSETS_LAKE_DATA_PATH instead of --db (default when $BAM_ASSETS_STORE is postgres)",
    )
    parser = argparse.ArgumentParser(prog="bam-assets", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    ingest_parser = commands.add_parser(
        "ingest", parents=[database], help="ingest files or folders through Dagster"
    )
    ingest_parser.add_argument("paths", nargs="+", metavar="PATH", help="alignment file or folder")
    ingest_parser.add_argument("--reference", help="FASTA reference for CRAM files")
    ingest_parser.add_argument(
        "--input-fmt-option",
        action="append",
        default=[],
        metavar="OPT",
        help="htslib input format option, as samtools' (e.g. decode_md=0)",
    )
    ingest_parser.add_argument(
        "--allow-missing-eof",
        action="store_true",
        help="read a file without its BGZF end-of-file marker, as samtools does (it warns)",
    )
    ingest_parser.set_defaults(run=ingest)

    view_parser = commands.add_parser(
        "view",
        parents=[database],
        add_help=False,
        help="print or write stored records as 'samtools view --no-PG' would",
        description="The records of a stored file that overlap the regions (all when none) and "
        "pass the filters, each once, in file order, as 'samtools view -M --no-PG' gives them.",
    )
    view_parser.add_argument("file_or_key", metavar="FILE_OR_KEY")
    view_parser.add_argument(
        "regions",
        nargs="*",
        metavar="REGION",
        help="chr1, chr1:100000, chr1:100000-, chr1:100-200 (1-based, closed), '*' (unplaced "
        "records) or '.' (all); {name}:100-200 quotes a name with a colon",
    )
    output = view_parser.add_argument_group("output")
    output.add_argument("-h", dest="with_header", action="store_true", help="print the header")
    output.add_argument("-H", dest="header_only", action="store_true", help="print the header only")
    output.add_argument("-c", dest="count", action="store_true", help="print only the count")
    output.add_argument("-o", "--output", metavar="FILE", help="write to FILE [stdout]")
    output.add_argument(
        "-O",
        "--output-fmt",
        dest="file_format",
        metavar="FORMAT",
        help="sam, bam or cram [from -o's extension, else sam]",
    )
    output.add_argument(
        "-b", dest="file_format", action="store_const", const="bam", help="same as -O bam"
    )
    output.add_argument(
        "-C", dest="file_format", action="store_const", const="cram", help="same as -O cram"
    )
    output.add_argument(
        "-T", "--reference", metavar="FASTA", help="reference FASTA (with .fai) for CRAM output"
    )
    output.add_argument(
        "-@", "--threads", type=int, default=0, help="extra BAM/CRAM compression threads [0]"
    )
    filters = view_parser.add_argument_group("filters (samtools view's meaning)")
    for option, dest, meaning in (
        ("-f", "require_flags", "keep records with all of the FLAG bits set"),
        ("-F", "exclude_flags", "drop records with any of the FLAG bits set"),
        ("-G", "exclude_all_flags", "drop records with all of the FLAG bits set"),
    ):
        filters.add_argument(
            option,
            dest=dest,
            action="append",
            default=[],
            metavar="FLAG",
            help=f"{meaning}: a number (0x hex, 0 octal) or names (DUP,SECONDARY)",
        )
    filters.add_argument("-q", dest="min_mapq", type=int, default=0, help="minimum MAPQ [0]")
    filters.add_argument(
        "-L", dest="bed", metavar="FILE", help="keep records overlapping the BED file's intervals"
    )
    filters.add_argument(
        "-r",
        dest="read_groups",
        action="append",
        default=[],
        metavar="RG",
        help="keep read group RG (records without an RG tag are kept too, as in samtools)",
    )
    filters.add_argument(
        "-R",
        dest="read_group_file",
        metavar="FILE",
        help="keep the read groups listed in FILE; ^FILE drops them",
    )
    filters.add_argument(
        "--where",
        metavar="SQL",
        help="keep records for which this SQL predicate on the reads columns is true, "
        "e.g. 'tlen > 1000 AND NOT is_duplicate'",
    )
    view_parser.add_argument("--help", action="help", help="show this help message and exit")
    view_parser.set_defaults(run=view)

    for name, summary_help in (
        ("flagstat", "print 'samtools flagstat' output computed in DuckDB"),
        ("idxstats", "print 'samtools idxstats' output computed in DuckDB"),
        ("stats", "print what 'samtools stats' prints (no reference), computed in DuckDB"),
    ):
        summary_parser = commands.add_parser(name, parents=[database], help=summary_help)
        summary_parser.add_argument("file_or_key", metavar="FILE_OR_KEY")
        if name == "idxstats":
            summary_parser.add_argument(
                "--reference", help="FASTA (with .fai) of a CRAM: its lengths replace @SQ LN"
            )
        if name == "stats":
            summary_parser.add_argument(
                "-i", "--insert-size", type=int, default=8000, help="maximum insert size [8000]"
            )
            summary_parser.add_argument(
                "--sn", action="store_true", help="only the SN lines (the fast part)"
            )
        summary_parser.set_defaults(run=summary)

    multiqc_parser = commands.add_parser(
        "multiqc",
        parents=[database],
        help="write samtools stats, flagstat and idxstats files of stored files for MultiQC",
    )
    multiqc_parser.add_argument("folder", metavar="DIR", help="folder to write (created)")
    multiqc_parser.add_argument(
        "file_or_key", nargs="*", metavar="FILE_OR_KEY", help="only these (default: all)"
    )
    multiqc_parser.add_argument(
        "--reference", help="FASTA (with .fai) of CRAM files: its lengths replace @SQ LN"
    )
    multiqc_parser.set_defaults(run=multiqc)

    listing = commands.add_parser("list", parents=[database], help="list ingested files")
    listing.set_defaults(run=list_files)
    add_sql_command(commands, database)
    add_migrate_command(commands, database)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    arguments, unparsed = parser.parse_known_args(argv)
    # samtools view takes options after the file too (view FILE -c chr1): argparse leaves the
    # regions that follow such options unparsed.
    if arguments.command == "view" and not any(a.startswith("-") for a in unparsed):
        arguments.regions += unparsed
    elif unparsed:
        parser.error(f"unrecognized arguments: {' '.join(unparsed)}")
    try:
        return arguments.run(arguments)
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except (StoreBusyError, StoreConfigError) as error:
        sys.stderr.write(f"{error}\n")
        return 1
