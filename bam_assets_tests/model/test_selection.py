"""Flags as ``samtools flags`` and ``samtools view -f/-F/-G`` read them."""

import pysam
import pytest

from bam_assets.model.selection import SelectionError, parse_flags


def samtools_flags(text: str) -> int:
    """The decimal value ``samtools flags`` prints for ``text``."""
    return int(pysam.flags(text).split("\t")[1])


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "4",
        "1024",
        "0x400",
        "0X904",
        "02000",
        "3844",
        "DUP",
        "dup",
        "DUP,SECONDARY,SUPPLEMENTARY",
        "PAIRED,PROPER_PAIR,UNMAP,MUNMAP,REVERSE,MREVERSE,READ1,READ2,SECONDARY,QCFAIL,DUP,"
        "SUPPLEMENTARY",
    ],
)
def test_flags_read_as_samtools_flags_reads_them(text):
    assert parse_flags(text) == samtools_flags(text)


@pytest.mark.parametrize("text", ["DUPX", "DUP,", "", "-4", "12abc", "0x", "PAIRED;DUP"])
def test_bad_flags_are_refused_in_words(text):
    with pytest.raises(SelectionError, match="unknown flag"):
        parse_flags(text)
