"""``bam-assets sql``: the store opened read-only in DuckDB, with its extensions loaded from
their files, for a query, a script on standard input or a prompt; ``--setup`` prints what a
plain DuckDB client types to do the same. ``bam_assets.connect()`` gives the same connection in
Python."""

import argparse
import sys

from bam_assets.orchestration.project_paths import default_backend, default_database
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import store_settings
from bam_assets.storage.shell import SqlError, run_sql


def add_sql_command(
    commands: argparse._SubParsersAction, database: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser(
        "sql",
        parents=[database],
        help="query the store with DuckDB SQL (read-only), or print the setup for a DuckDB client",
        description="Runs SQL on the store attached read-only as 'lake' and in use: the reads, "
        "files and summary tables and the sam_tag() macros need no prefix. Without SQL, "
        "statements are read from standard input (a prompt on a terminal).",
    )
    parser.add_argument("query", metavar="SQL", nargs="?", help="statements to run")
    parser.add_argument(
        "--box", action="store_true", help="print DuckDB's boxed tables instead of tab-separated"
    )
    parser.add_argument(
        "--setup",
        action="store_true",
        help="print the statements a plain DuckDB client of this duckdb release runs to open "
        'the store (e.g. duckdb -cmd "$(bam-assets sql --setup)")',
    )
    parser.set_defaults(run=run_sql_command)


def _store(arguments: argparse.Namespace) -> StoreResource:
    settings = store_settings(arguments.backend, arguments.db, memory_limit=None)
    return StoreResource(settings=settings)


def connect(db: str | None = None, lake: bool = False):
    """A DuckDB connection to the store (``db``, else ``$BAM_ASSETS_DB`` or the project's; or,
    ``lake``, the Postgres catalog of ``$BAM_ASSETS_LAKE_CATALOG``), attached read-only as
    ``lake`` and in use, the extensions loaded from their files. The caller closes it."""
    backend = "postgres" if lake else default_backend()
    settings = store_settings(backend, db or default_database(), memory_limit=None)
    return StoreResource(settings=settings).store(all_cpus=True).connect()


def run_sql_command(arguments: argparse.Namespace) -> int:
    store = _store(arguments).store(all_cpus=True)
    if arguments.setup:
        sys.stdout.write("".join(f"{statement};\n" for statement in store.client_statements()))
        return 0
    connection = store.connect()
    try:
        if arguments.query is not None:
            return _run(connection, arguments.query, arguments.box)
        if not sys.stdin.isatty():
            return _run(connection, sys.stdin.read(), arguments.box)
        return _prompt(connection, arguments.box)
    finally:
        connection.close()


def _run(connection, text: str, box: bool) -> int:
    try:
        run_sql(connection, text, sys.stdout.write, box)
    except SqlError as error:
        sys.stderr.write(f"{error}\n")
        return 1
    return 0


def _prompt(connection, box: bool) -> int:
    """Reads statements up to a ';' at the end of a line and runs them, until end of input."""
    pending: list[str] = []
    while True:
        try:
            line = input("bam-assets> " if not pending else "       ...> ")
        except EOFError:
            sys.stdout.write("\n")
            return 0
        pending.append(line)
        if line.rstrip().endswith(";"):
            _run(connection, "\n".join(pending), box)
            sys.stdout.flush()
            pending = []
