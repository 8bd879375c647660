"""Running a user's SQL on a connection to the store, statement by statement, each result
written as tab-separated text (header first) or as DuckDB's boxed table."""

from collections.abc import Callable

import duckdb


class SqlError(RuntimeError):
    """DuckDB refused a statement: its words, without a traceback."""


def run_sql(
    connection: duckdb.DuckDBPyConnection, text: str, write: Callable[[str], None], box: bool
) -> None:
    """Runs every statement of ``text`` on ``connection`` and writes each one's rows."""
    try:
        statements = connection.extract_statements(text)
        for statement in statements:
            if box:
                relation = connection.sql(statement.query)
                if relation is not None:
                    write(f"{relation}")
                continue
            result = connection.execute(statement.query)
            if result.description is None:
                continue
            write("\t".join(column[0] for column in result.description) + "\n")
            while rows := result.fetchmany(10_000):
                write("".join("\t".join(_text(v) for v in row) + "\n" for row in rows))
    except duckdb.Error as error:
        raise SqlError(str(error)) from error


def _text(value: object) -> str:
    return "NULL" if value is None else str(value)
