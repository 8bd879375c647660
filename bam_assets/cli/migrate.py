"""``bam-assets migrate OLD NEW``: moves a store of the previous release (one DuckDB file with a
``reads`` table) into a store of this one, verified by row counts; the old file is only read."""

import argparse
import sys
from pathlib import Path

from bam_assets.orchestration.project_paths import default_database
from bam_assets.orchestration.settings import store_settings
from bam_assets.storage.migrate import MigrationError, migrate


def add_migrate_command(commands: argparse._SubParsersAction, _: argparse.ArgumentParser) -> None:
    parser = commands.add_parser(
        "migrate",
        help="move a store of an earlier bam-assets (a DuckDB file) into a new store",
        description="Copies every partition of OLD (its reads, side rows and files row) and the "
        "summary tables into the store NEW (or the Postgres catalog of --lake), then checks the "
        "rows per table and partition on both sides. OLD is only read.",
    )
    parser.add_argument("old", metavar="OLD", help="the earlier release's DuckDB file")
    parser.add_argument(
        "new",
        metavar="NEW",
        nargs="?",
        help="the new store's catalog file (e.g. data/bam_assets.sqlite)",
    )
    parser.add_argument(
        "--lake",
        action="store_true",
        help="move it into the Postgres catalog of $BAM_ASSETS_LAKE_CATALOG and "
        "$BAM_ASSETS_LAKE_DATA_PATH instead of NEW",
    )
    parser.set_defaults(run=run_migrate)


def run_migrate(arguments: argparse.Namespace) -> int:
    if bool(arguments.new) == arguments.lake:
        raise SystemExit("bam-assets migrate: give NEW, or --lake (one of them)")
    old = Path(arguments.old).absolute()
    if arguments.lake:
        settings = store_settings("postgres", default_database())
    else:
        settings = store_settings("local", str(Path(arguments.new).absolute()))
    config = settings.store_config(threads=None)
    try:
        result = migrate(old, config, progress=lambda line: sys.stderr.write(line + "\n"))
    except MigrationError as error:
        sys.stderr.write(f"bam-assets migrate: {error}\n")
        return 1
    for table in result.tables:
        sys.stdout.write(f"{table.table}\t{table.rows} rows\n")
    sys.stderr.write(
        f"moved {result.partitions} partitions ({result.reads} reads) from {old} to "
        f"{config.catalog.removeprefix('postgres:')}: every table's rows per partition match\n"
    )
    return 0
