"""Table names of one ingest instance: a named instance prefixes every table with its name.

Identifiers are validated once here, so SQL built from them never carries user text.
"""

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TableSpec:
    """A table derived from the reads, keyed by partition: its unprefixed name (``reads_…`` for
    side tables written with the reads, ``read_stats_…`` for summaries) and its columns after
    ``key`` (SQL column definitions). The layer that computes a table declares it."""

    name: str
    columns: str


@dataclass(frozen=True)
class TableNames:
    """``reads``, ``files`` and every other table of an instance, with its prefix."""

    prefix: str = ""

    def __post_init__(self) -> None:
        if self.prefix and not _IDENTIFIER.match(self.prefix):
            raise ValueError(f"Invalid table prefix {self.prefix!r}: use letters, digits and _")

    @property
    def reads(self) -> str:
        return f"{self.prefix}reads"

    @property
    def files(self) -> str:
        return f"{self.prefix}files"

    def keyed(self, table: str) -> bool:
        """Whether ``table`` is one of this instance's tables keyed by partition: the reads and
        files tables and every table named ``<prefix>reads_…`` or ``<prefix>read_stats_…``
        (the side tables and the summaries)."""
        return table in (self.reads, self.files) or table.startswith(
            (f"{self.prefix}reads_", f"{self.prefix}read_stats_")
        )

    def of(self, spec: TableSpec) -> str:
        """The instance's name of ``spec``'s table."""
        if not _IDENTIFIER.match(spec.name):
            raise ValueError(f"Invalid table name {spec.name!r}: use letters, digits and _ only")
        return f"{self.prefix}{spec.name}"
