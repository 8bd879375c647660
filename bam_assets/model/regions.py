"""Regions as samtools takes them: ``chr1``, ``chr1:100000``, ``chr1:100-200``, ``*``, and BED.

``parse_region`` follows htslib's ``hts_parse_region`` (hts.c, with ``HTS_PARSE_THOUSANDS_SEP``,
as ``samtools view FILE REGION`` calls it through ``sam_itr_querys``), and BED lines follow
samtools' ``bed_read`` (bedidx.c). A ``Region`` is 1-based and closed, like SAM's ``pos``; a
record overlaps it when ``pos <= end`` and its last reference base is ``>= start``.
"""

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# htslib's HTS_POS_MAX: "to the end of the reference".
POS_MAX = (0x7FFFFFFF << 32) | 0x7FFFFFFF
# samtools' region for the records without a reference (tid -1), and for every record.
UNPLACED = "*"
EVERY_RECORD = "."

_SPACE = " \t\n\v\f\r"
_DIGITS = "0123456789"
_SUFFIX_EXPONENT = {"k": 3, "m": 6, "g": 9}


class RegionError(ValueError):
    """A region or BED file that names no reference of the file or no range."""


@dataclass(frozen=True)
class Region:
    """``rname:start-end``, 1-based and closed; ``rname`` ``*`` (``UNPLACED``) selects the records
    without a reference."""

    rname: str
    start: int = 1
    end: int = POS_MAX

    def __str__(self) -> str:
        if self.rname == UNPLACED:
            return UNPLACED
        if self.end == POS_MAX:
            return f"{self.rname}:{self.start}-"
        return f"{self.rname}:{self.start}-{self.end}"


def parse_decimal(text: str) -> tuple[int, str]:
    """htslib's ``hts_parse_decimal`` with thousands separators: the number at the start of
    ``text`` (``1,000``, ``1.5k``, ``2e6``, ``3M``; a fraction is dropped) and the text after it,
    or ``(0, text)`` when it starts with no digits."""
    index = len(text) - len(text.lstrip(_SPACE))
    sign = 1
    if text[index : index + 1] in ("+", "-"):
        sign = -1 if text[index] == "-" else 1
        index += 1
    digits = decimals = exponent = 0
    number = 0
    while index < len(text) and (text[index] in _DIGITS or text[index] == ","):
        if text[index] != ",":
            number, digits = number * 10 + int(text[index]), digits + 1
        index += 1
    if text[index : index + 1] == ".":
        index += 1
        while index < len(text) and text[index] in _DIGITS:
            number, digits, decimals = number * 10 + int(text[index]), digits + 1, decimals + 1
            index += 1
    suffix = text[index : index + 1].lower()
    if suffix == "e":
        index += 1
        exponent_sign = 1
        if text[index : index + 1] in ("+", "-"):
            exponent_sign = -1 if text[index] == "-" else 1
            index += 1
        while index < len(text) and text[index] in _DIGITS:
            exponent = exponent * 10 + int(text[index])
            index += 1
        exponent *= exponent_sign
    elif suffix in _SUFFIX_EXPONENT:
        exponent = _SUFFIX_EXPONENT[suffix]
        index += 1
    exponent -= decimals
    number = number * 10**exponent if exponent >= 0 else number // 10**-exponent
    if digits == 0:
        return 0, text
    return sign * number, text[index:]


def _named(name: str, names: Mapping[str, str], region: str) -> str:
    if name in names:
        return names[name]
    if not names:
        raise RegionError(
            f"region {region!r}: the file has no reference sequences (no @SQ lines), so only "
            f"'{UNPLACED}' (its unplaced records) can be asked for"
        )
    raise RegionError(f"region {region!r}: unknown reference name {name!r}")


def _coordinates(text: str, region: str) -> tuple[int, int]:
    """``start-end`` after the colon as 0-based half-open ``(beg, end)``, hts_parse_region's
    rules: ``100`` and ``100-`` run to the end, ``-100`` starts at 1, ``0`` counts as 1."""
    value, hyphen = parse_decimal(text)
    beg = value - 1
    end = POS_MAX
    if beg < 0:
        if beg != -1 and hyphen.startswith("-") and text:
            raise RegionError(f"region {region!r}: coordinates must be > 0")
        if hyphen[:1] in (*_DIGITS, ",") or hyphen == "":
            # chr:-100 is chr:1-100
            return 0, POS_MAX if beg == -1 else -(beg + 1)
        if beg < -1:
            raise RegionError(f"region {region!r}: unexpected {hyphen!r} after the range")
    if hyphen.startswith("-"):
        end, rest = parse_decimal(hyphen[1:])
        if rest[:1] not in ("", ","):
            raise RegionError(f"region {region!r}: unexpected {rest!r} after the range")
        end = end or POS_MAX  # chr:100- runs to the end
    elif hyphen:
        raise RegionError(f"region {region!r}: unexpected {hyphen!r} after the range")
    if beg >= end:
        raise RegionError(f"region {region!r}: the range ends before it starts")
    return beg, end


def parse_region(text: str, names: Mapping[str, str]) -> Region:
    """One region, as htslib's ``hts_parse_region`` reads it against a header's ``names`` (see
    ``sam_header.reference_names``): a name with a colon is first tried whole, ``{name}:range``
    quotes one, and a region that could mean both is refused. Raises ``RegionError``."""
    if text == UNPLACED:
        return Region(UNPLACED)
    colon: int | None
    if text.startswith("{"):
        close = text.find("}")
        if close < 0:
            raise RegionError(f"region {text!r}: mismatching braces")
        colon = close + 1 if text[close + 1 : close + 2] == ":" else None
        name = text[1:close] if colon is not None else text[1:-1]
    else:
        colon = text.rfind(":")
        colon = None if colon < 0 else colon
        name = text if colon is None else text[:colon]
        if colon is not None and text in names:
            if name in names:
                raise RegionError(
                    f"region {text!r} is ambiguous: write {{{text}}} for the reference, or "
                    f"{{{name}}}{text[colon:]} for a range of {name}"
                )
            return Region(names[text])
    rname = _named(name, names, text)
    if colon is None:
        return Region(rname)
    beg, end = _coordinates(text[colon + 1 :], text)
    return Region(rname, min(max(beg, 0) + 1, POS_MAX), min(end, POS_MAX))


def parse_regions(texts: Sequence[str], names: Mapping[str, str]) -> tuple[Region, ...]:
    """The regions of a ``view`` command line; ``()`` (every record) when one of them is ``.``."""
    if EVERY_RECORD in texts:
        return ()
    return tuple(parse_region(text, names) for text in texts)


_BED_NUMBERS = re.compile(r"\s*(\d+)(?:\s+(\d+))?")


def parse_bed(text: str, source: str) -> tuple[Region, ...]:
    """The intervals of a BED file as samtools' ``bed_read`` reads them: whitespace-separated
    ``name start end`` (0-based, half-open), or ``name position`` (1-based, one base, as in a VCF);
    blank, ``#``, ``browser`` and ``track`` lines skipped. Reference names are not checked (an
    unknown one matches no record, as in samtools). Raises ``RegionError`` naming the line."""
    intervals = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.strip(_SPACE).split(None, 1)
        if not fields or fields[0].startswith("#"):
            continue
        name, rest = fields[0], fields[1] if len(fields) > 1 else ""
        match = _BED_NUMBERS.match(rest)
        beg = end = -1
        if match is not None and match.group(2) is not None:
            beg, end = int(match.group(1)), int(match.group(2))
        elif match is not None:
            end = int(match.group(1))  # one 1-based position
            beg = end - 1
        if beg < 0 or end < beg:
            if name in ("browser", "track"):
                continue
            raise RegionError(
                f"BED file {source}, line {number}: expected 'name start end' (0-based, end not "
                f"below start) or 'name position' (1-based), got {line!r}"
            )
        intervals.append(Region(name, beg + 1, end))
    return tuple(intervals)
