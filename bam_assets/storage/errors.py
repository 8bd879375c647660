"""What can go wrong with a store, as the layers above catch it: each error names the store and
the cause in words."""

import re


class StoreBusyError(RuntimeError):
    """Other writers kept committing conflicting changes, or held the lock of a partition, for
    longer than we were willing to wait."""


class StoreConfigError(RuntimeError):
    """The store cannot be used as configured (an unreachable catalog, a missing data path, a
    missing extension, …); raised before anything is written, naming the cause."""


class PreviousReleaseStoreError(StoreConfigError):
    """The path names a store written by an earlier bam-assets (one DuckDB file with a ``reads``
    table): the message names the command that moves it."""


class StoreMissingError(LookupError):
    """A read-only session was asked of a store that does not exist yet."""


class OutdatedSchemaError(RuntimeError):
    """The tables were made by an earlier bam-assets with other columns."""


_DISK_FULL = re.compile(r"no space left|file too large|disk (is )?full|quota", re.IGNORECASE)


def is_disk_full(error: BaseException) -> bool:
    return _DISK_FULL.search(str(error)) is not None


class StoreWriteError(RuntimeError):
    """The store could not be written (disk full, file size limit, I/O error).

    Raised after the transaction was rolled back, so nothing of the failed write is visible.
    """

    def __init__(self, location: str, error: BaseException):
        cause = (
            "the disk is full or a file size limit was reached"
            if is_disk_full(error)
            else "an I/O error occurred"
        )
        super().__init__(f"Cannot write to the store {location}: {cause} ({error})")
        self.location = location


class PartitionNotFoundError(KeyError):
    """No stored partition has the key (or source path) asked for."""

    def __str__(self) -> str:
        return str(self.args[0])
