"""``bam-assets``: ingest, list and regenerate alignment files from the command line.

A thin layer over what the assets call: ``ingest`` materializes the ``reads`` asset in process;
the other commands read the store.
"""

import argparse
import sys
from collections.abc import Sequence

from bam_assets.cli.ingest import ingest
from bam_assets.cli.store_commands import list_files, summary, view
from bam_assets.orchestration.project_paths import default_database
from bam_assets.storage.store import StoreBusyError


def _parser() -> argparse.ArgumentParser:
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument(
        "--db",
        default=default_database(),
        help="DuckDB file (default: $BAM_ASSETS_DB, else data/bam_assets.duckdb in the project)",
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
        help="print stored records as 'samtools view --no-PG' would",
    )
    view_parser.add_argument("file_or_key", metavar="FILE_OR_KEY")
    view_parser.add_argument(
        "-h", dest="header", action="store_true", help="print the header first"
    )
    view_parser.add_argument("--help", action="help", help="show this help message and exit")
    view_parser.set_defaults(run=view)

    for name, summary_help in (
        ("flagstat", "print 'samtools flagstat' output computed in DuckDB"),
        ("idxstats", "print 'samtools idxstats' output computed in DuckDB"),
        ("stats", "print the SN lines of 'samtools stats' computed in DuckDB"),
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
        summary_parser.set_defaults(run=summary)

    listing = commands.add_parser("list", parents=[database], help="list ingested files")
    listing.set_defaults(run=list_files)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        return arguments.run(arguments)
    except BrokenPipeError:
        sys.stderr.close()
        return 0
    except StoreBusyError as error:
        sys.stderr.write(f"{error}\n")
        return 1
