"""SAM text that is not UTF-8, kept byte for byte in text columns.

samtools prints a record's bytes as they are: a Latin-1 read name or ``Z`` tag, an ``A`` tag above
0x7F, a QUAL of Phred 95 or more (printed above ``~``), a header comment. The store's text columns
hold UTF-8 only. So text is stored as UTF-8 where it is UTF-8, and every byte that is not part of
valid UTF-8 (0x80-0xFF) is stored as the private-use character U+F700 + byte (U+F780-U+F7FF);
``view`` writes those characters back as the bytes. A character U+F780-U+F7FF present in the input
is itself stored as its three bytes, escaped, so the mapping is lossless both ways (Python's
``surrogateescape`` does the same with characters that UTF-8 cannot hold).

In SQL an escaped byte reads as one private-use character: ``caf\\uf7e9`` for Latin-1 ``café``.
"""

import codecs
import re

import numpy as np

_ESCAPE_BASE = 0xF700
# The UTF-8 bytes of the escape characters U+F780-U+F7FF.
_ESCAPE_UTF8 = re.compile(rb"\xef[\x9e\x9f][\x80-\xbf]")
_ESCAPE_LEADS = (b"\xef\x9e", b"\xef\x9f")
_ESCAPE_FIRST_BYTE = 0xEF
_ERROR_HANDLER = "bam_assets_escape"


def _escape_bytes(raw: bytes) -> str:
    return "".join(chr(_ESCAPE_BASE + byte) for byte in raw)


def _escape_undecodable(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    return _escape_bytes(error.object[error.start : error.end]), error.end


codecs.register_error(_ERROR_HANDLER, _escape_undecodable)


def text_from_bytes(raw: bytes) -> str:
    """The text stored for ``raw``: its UTF-8, with every other byte escaped."""
    if raw.isascii():
        return raw.decode("ascii")
    if not any(lead in raw for lead in _ESCAPE_LEADS):
        return raw.decode("utf-8", _ERROR_HANDLER)
    # characters that look like escapes are escaped byte by byte (0xEF never continues a
    # sequence, so cutting before one never splits valid UTF-8)
    parts = _ESCAPE_UTF8.split(raw)
    looks_like_escape = _ESCAPE_UTF8.findall(raw)
    text = [parts[0].decode("utf-8", _ERROR_HANDLER)]
    for escape, part in zip(looks_like_escape, parts[1:], strict=True):
        text += [_escape_bytes(escape), part.decode("utf-8", _ERROR_HANDLER)]
    return "".join(text)


def text_from_htslib(text: str) -> str:
    """The text stored for a string pysam decoded with ``surrogateescape`` (bytes that are not
    UTF-8 as lone surrogates)."""
    if text.isascii():
        return text
    return text_from_bytes(text.encode("utf-8", "surrogateescape"))


def unescape_utf8(data: bytes) -> bytes:
    """The original bytes of stored text already encoded as UTF-8."""
    if not any(lead in data for lead in _ESCAPE_LEADS):
        return data
    return _ESCAPE_UTF8.sub(lambda match: bytes([ord(match[0].decode()) - _ESCAPE_BASE]), data)


def bytes_from_text(text: str) -> bytes:
    """The bytes samtools prints for stored ``text``."""
    return unescape_utf8(text.encode("utf-8"))


def escaped_rows(data: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The rows of a text column (its UTF-8 bytes and int64 offsets) that hold an escaped byte."""
    firsts = np.flatnonzero(data[:-1] == _ESCAPE_FIRST_BYTE)
    firsts = firsts[(data[firsts + 1] & 0xFE) == 0x9E]  # 0x9E or 0x9F
    return np.unique(np.searchsorted(offsets, firsts, side="right") - 1)
