"""What ``view`` selects from a partition, with ``samtools view``'s meaning: regions, flag bits,
minimum MAPQ, BED targets, read groups and an SQL predicate.

``parse_flags`` reads flags as htslib's ``bam_str2flag`` does; the store turns a ``Selection``
into SQL (``storage.selection``).
"""

import re
from dataclasses import dataclass, field

from bam_assets.model.regions import Region
from bam_assets.model.sam import FLAG_NAMES


class SelectionError(ValueError):
    """An option of ``view`` that selects nothing meaningful: a bad flag, region or predicate."""


@dataclass(frozen=True)
class ReadFilters:
    """``samtools view``'s filters; a record is kept when it passes all of them.

    - ``require_flags`` (``-f``): every bit set; ``exclude_flags`` (``-F``): no bit set;
      ``exclude_all_flags`` (``-G``): not all of its bits set.
    - ``min_mapq`` (``-q``): MAPQ at least this.
    - ``targets`` (``-L``): overlaps one of these intervals (a BED file); ``None`` means no BED,
      ``()`` an empty one, which keeps nothing. Unplaced records never overlap.
    - ``read_groups`` (``-r``/``-R``): an ``RG:Z`` tag among these; ``excluded_read_groups``
      (``-R ^FILE``): not among these. As in samtools, a record without an RG tag is kept.
    - ``where`` (``--where``): an SQL predicate on the reads table's columns.
    """

    require_flags: int = 0
    exclude_flags: int = 0
    exclude_all_flags: int = 0
    min_mapq: int = 0
    targets: tuple[Region, ...] | None = None
    read_groups: frozenset[str] | None = None
    excluded_read_groups: frozenset[str] = frozenset()
    where: str | None = None


@dataclass(frozen=True)
class Selection:
    """The records of a partition that overlap any of ``regions`` (every record when empty) and
    pass ``filters``; each record once, in file order."""

    regions: tuple[Region, ...] = ()
    filters: ReadFilters = field(default_factory=ReadFilters)


NO_FILTERS = ReadFilters()
ALL_RECORDS = Selection()


# strtol(text, &end, 0): hexadecimal after 0x, octal after a leading 0, else decimal.
_FLAG_NUMBER = re.compile(r"\s*(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)")


def parse_flags(text: str) -> int:
    """Flag bits written as ``samtools view -f/-F/-G`` and ``samtools flags`` take them: a number
    (``1024``, ``0x400``, ``02000``) or comma-separated names (``DUP,SECONDARY``; any case).

    Stricter than htslib in two ways, both errors there would go unnoticed: text after a number
    (htslib reads ``12abc`` as 12) and an empty value are refused. Raises ``SelectionError``.
    """
    number = _FLAG_NUMBER.fullmatch(text)
    if number:
        digits = number.group(1)
        base = 16 if digits[:2].lower() == "0x" else 8 if digits.startswith("0") else 10
        return int(digits, base)
    bits = 0
    for name in text.split(","):
        if name.upper() not in FLAG_NAMES:
            where = "" if name == text else f" in {text!r}"
            raise SelectionError(
                f"unknown flag {name!r}{where}: use a number (decimal, 0x hexadecimal or 0 "
                f"octal) or comma-separated names among {','.join(FLAG_NAMES)}"
            )
        bits |= FLAG_NAMES[name.upper()]
    return bits
