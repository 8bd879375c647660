"""Text that is not UTF-8 is stored in UTF-8 columns and comes back byte for byte."""

import random

import pytest

from bam_assets.model.sam_bytes import bytes_from_text, text_from_bytes, text_from_htslib


@pytest.mark.parametrize(
    ("raw", "stored"),
    [
        (b"plain", "plain"),
        ("café".encode(), "café"),  # UTF-8 is stored as it is
        (b"caf\xe9", "caf\uf7e9"),  # Latin-1: the stray byte is escaped
        (b"\xe3\x81", "\uf7e3\uf781"),  # a sequence cut short
        ("\uf7e9".encode(), "\uf7ef\uf79f\uf7a9"),  # an escape character itself: its bytes
        (b"\xed\xa0\x80", "\uf7ed\uf7a0\uf780"),  # an encoded surrogate is not UTF-8
    ],
)
def test_text_is_utf8_with_every_other_byte_escaped(raw: bytes, stored: str):
    assert text_from_bytes(raw) == stored
    assert bytes_from_text(stored) == raw


def test_any_bytes_round_trip():
    rng = random.Random(3)
    alphabet = [0x41, 0x09, 0x00, 0x80, 0x9E, 0x9F, 0xA9, 0xBF, 0xC3, 0xE9, 0xEF, 0xF0, 0xFF]
    for _ in range(20_000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 10)))
        stored = text_from_bytes(raw)
        stored.encode("utf-8")  # what DuckDB accepts
        assert bytes_from_text(stored) == raw
        assert text_from_htslib(raw.decode("utf-8", "surrogateescape")) == stored
