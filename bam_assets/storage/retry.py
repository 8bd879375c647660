"""The one retry helper: an attempt repeated with jittered backoff while it fails in a way that
passes, up to a deadline; and transactions retried with it while they conflict with other
writers."""

import logging
import random
import re
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from bam_assets.storage.errors import StoreBusyError

T = TypeVar("T")

# Words of a commit that lost to another writer; the catalog rolled it back and kept nothing, so
# the whole transaction is tried again:
# - DuckLake: another snapshot committed a conflicting change after this transaction began, or
#   its own retries of a commit lost the race for the next snapshot id every time
#   (ducklake_max_retry_count, 10: seen with 16 writers committing at once, duckdb/ducklake#1283);
# - SQLite (the local catalog): another writer committed since this transaction read the
#   catalog, which SQLite refuses at once ("database is locked"), or held the write lock for
#   longer than the catalog's busy_timeout.
_CONFLICT = re.compile(
    r"Transaction conflict|Exceeded the maximum retry count|"
    r"duplicate key value violates unique constraint \"ducklake_|database is locked",
    re.IGNORECASE,
)


def is_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.Error) and bool(_CONFLICT.search(str(error)))


def retry(
    what: str,
    attempt: Callable[[], T],
    passes: Callable[[BaseException], bool],
    timeout_seconds: float,
    log: logging.Logger,
) -> T:
    """``attempt()`` until it returns; an error for which ``passes`` is true is tried again after
    a jittered pause (50 ms doubling up to 2 s) until ``timeout_seconds`` have gone by, then
    StoreBusyError; any other error is raised at once."""
    deadline = time.monotonic() + timeout_seconds
    delay = 0.05
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt()
        except BaseException as error:
            if not passes(error):
                raise
            if time.monotonic() > deadline:
                raise StoreBusyError(
                    f"{what}: other writers kept the store busy for {timeout_seconds:.0f} s "
                    f"({attempts} attempts; last: {' '.join(str(error).split())})"
                ) from error
            pause = random.uniform(0, delay)
            log.info("%s: busy (%s); retrying in %.2f s", what, _first_line(error), pause)
            time.sleep(pause)
            delay = min(delay * 2, 2.0)


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__


class RetriedTransactions:
    """BEGIN; body; COMMIT on one connection, retried while it conflicts with other writers, for
    at most ``timeout_seconds`` (then StoreBusyError).

    Other errors are not retried. After a COMMIT that failed any other way (a lost catalog
    connection) nobody knows whether the snapshot was written: ``commit_outcome_unknown`` says so,
    and the caller must not delete what the transaction registered.
    """

    def __init__(
        self, connection: duckdb.DuckDBPyConnection, timeout_seconds: float, log: logging.Logger
    ) -> None:
        self.connection = connection
        self.timeout_seconds = timeout_seconds
        self.log = log
        self.commit_outcome_unknown = False

    def run(self, what: str, body: Callable[[], T]) -> T:
        return retry(what, lambda: self._once(body), is_conflict, self.timeout_seconds, self.log)

    def _once(self, body: Callable[[], T]) -> T:
        self.connection.execute("BEGIN TRANSACTION")
        try:
            result = body()
        except BaseException:
            self._rollback()
            raise
        try:
            self.connection.execute("COMMIT")
        except BaseException as error:
            self._rollback()
            if not is_conflict(error):
                self.commit_outcome_unknown = True
            raise
        return result

    def _rollback(self) -> None:
        try:
            self.connection.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT has ended the transaction already ("no transaction is active")
