"""Table names of one ingest instance: a named instance prefixes every table with its name.

Identifiers are validated once here, so SQL built from them never carries user text.
"""

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class TableSpec:
    """A table that rides along with the reads: its unprefixed name and its columns after
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

    def of(self, spec: TableSpec) -> str:
        """The instance's name of ``spec``'s table."""
        if not _IDENTIFIER.match(spec.name):
            raise ValueError(f"Invalid table name {spec.name!r}: use letters, digits and _ only")
        return f"{self.prefix}{spec.name}"
