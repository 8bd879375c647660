"""The bulk BAM decoder against htslib's own SAM formatter, record by record and byte by byte.

Every comparison also checks that the bulk decoder really decoded the file (a table equal to
htslib's because htslib took over would prove nothing).
"""

import logging
import random
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pysam
import pytest

from bam_assets.model.reads_schema import READS_SCHEMA
from bam_assets.reading.bam.decoder import NeedsHtslib, decode_chunk, iter_record_chunks
from bam_assets.reading.errors import AlignmentReadError
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import iter_read_batches
from bam_assets_tests.helpers import REAL_DATA, REAL_FILES, bgzf_blocks

REAL_BAMS = [name for name in REAL_FILES if name.endswith(".bam")]
_CIGAR_QUERY_OPS = "MIS=X"


def read_table(path: Path, bulk: bool, chunk_size: int) -> pa.Table:
    options = ReaderOptions(chunk_size=chunk_size, bulk_bam_decoding=bulk)
    return pa.Table.from_batches(list(iter_read_batches(path, options)), READS_SCHEMA)


def decoded_records(path: Path, chunk_size: int) -> int:
    """Records the bulk decoder decodes on its own; raises NeedsHtslib where it would stop."""
    count = 0
    for chunk in iter_record_chunks(path, chunk_size):
        count += len(decode_chunk(*chunk).columns["qname"])
    return count


def assert_same_as_htslib(path: Path, chunk_size: int) -> None:
    bulk = read_table(path, True, chunk_size)
    htslib = read_table(path, False, chunk_size)
    assert bulk.num_rows == htslib.num_rows
    for name in htslib.column_names:
        assert bulk.column(name).to_pylist() == htslib.column(name).to_pylist(), name


@pytest.mark.parametrize("name", REAL_BAMS)
def test_real_bam_files_decode_in_bulk_exactly_as_htslib_formats_them(name: str):
    path = REAL_DATA / name
    assert decoded_records(path, 97) == int(pysam.view("-c", str(path)).strip())
    assert_same_as_htslib(path, 97)


def _random_cigar(rng: random.Random, length: int) -> str:
    """A CIGAR of every operation whose query length is ``length`` (not starting with S, which
    htslib would take for a CIGAR kept in a CG tag)."""
    ops = [f"{rng.randint(0, 3)}H"] if rng.random() < 0.2 else []
    left = length
    first = max(1, length // 3)
    ops.append(f"{first}M")
    left -= first
    while left > 0:
        op = rng.choice("MIDNSP=X")
        size = rng.randint(1, min(left, 9)) if op in _CIGAR_QUERY_OPS else rng.randint(1, 500)
        ops.append(f"{size}{op}")
        left -= size if op in _CIGAR_QUERY_OPS else 0
    return "".join(ops)


def _random_tags(rng: random.Random) -> list[str]:
    """Tags of every type and width samtools writes, values spanning each type's range."""
    float_bits = rng.getrandbits(32)
    value = np.array([float_bits], np.uint32).view(np.float32)[0]
    number = rng.choice(
        [
            rng.randint(-128, 127),
            rng.randint(0, 255),
            rng.randint(-32768, 32767),
            rng.randint(0, 65535),
            rng.randint(-(2**31), 2**31 - 1),
            rng.randint(0, 2**32 - 1),
        ]
    )
    text = "".join(rng.choices("ACGT:;=,-_ abcXYZ0123456789", k=rng.randint(0, 20)))
    array_type = rng.choice("cCsSiI")
    low, high = {
        "c": (-128, 127),
        "C": (0, 255),
        "s": (-32768, 32767),
        "S": (0, 65535),
        "i": (-(2**31), 2**31 - 1),
        "I": (0, 2**32 - 1),
    }[array_type]
    elements = [str(rng.randint(low, high)) for _ in range(rng.randint(0, 6))]
    tags = [
        f"XN:i:{number}",
        f"XA:A:{rng.choice('AZaz!~')}",
        f"XF:f:{float(value):.9g}",
        f"XZ:Z:{text}",
        f"XH:H:{rng.getrandbits(32):08X}",
        f"XB:B:{','.join([array_type, *elements])}",
        f"MD:Z:{rng.randint(0, 99)}",
    ]
    rng.shuffle(tags)
    return tags[: rng.randint(0, len(tags))]


def write_varied_bam(
    path: Path, count: int, seed: int, extra_tags: dict[int, str] | None = None
) -> None:
    """Mapped, unmapped, mate-on-another-contig and sequence-less records with random tags;
    ``extra_tags`` adds a tag to the records at those indexes."""
    rng = random.Random(seed)
    header = {"HD": {"VN": "1.6"}, "SQ": [{"SN": "chr1", "LN": 10**6}, {"SN": "chrM", "LN": 16569}]}
    with pysam.AlignmentFile(str(path), "wb", header=header) as out:
        for index in range(count):
            length = rng.randint(1, 40)
            seq = "".join(rng.choices("ACGTN=MRWSYKVHDB", k=length))
            qual = "".join(chr(rng.randint(33, 126)) for _ in range(length))
            kind = rng.random()
            name = "".join(rng.choices("ABCxyz0123456789:_/", k=rng.randint(1, 30)))
            if kind < 0.15:  # unplaced and unmapped
                fields = [name, "4", "*", "0", "0", "*", "*", "0", "0", seq, qual]
            elif kind < 0.2:  # no sequence stored
                fields = [
                    name,
                    "0",
                    "chr1",
                    str(rng.randint(1, 9000)),
                    "60",
                    "10M",
                    "*",
                    "0",
                    "0",
                    "*",
                    "*",
                ]
            else:
                mate = rng.choice(["=", "chrM", "*"])
                flag = rng.choice([0, 16, 99, 147, 83, 163, 256, 2048, 1024, 512 + 1 + 8])
                fields = [
                    name,
                    str(flag),
                    "chr1",
                    str(rng.randint(1, 9000)),
                    str(rng.randint(0, 255)),
                    _random_cigar(rng, length),
                    mate,
                    str(rng.randint(0, 9000)),
                    str(rng.randint(-500, 500)),
                    seq,
                    qual if rng.random() < 0.9 else "*",
                ]
            tags = _random_tags(rng)
            if extra_tags and index in extra_tags:
                tags.append(extra_tags[index])
            out.write(pysam.AlignedSegment.fromstring("\t".join(fields + tags), out.header))


def test_every_tag_type_and_record_kind_decodes_as_htslib_formats_it(tmp_path: Path):
    path = tmp_path / "varied.bam"
    write_varied_bam(path, 5000, seed=3)
    assert decoded_records(path, 333) == 5000
    assert_same_as_htslib(path, 333)


def test_records_left_to_htslib_are_formatted_by_htslib_from_their_chunk_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "float_array.bam"
    write_varied_bam(path, 2000, seed=5, extra_tags={1234: "YF:B:f,0.1,-2.5e-07,3"})
    with pytest.raises(NeedsHtslib) as stopped:
        decoded_records(path, 500)
    assert stopped.value.rec_no == 1000
    with caplog.at_level(logging.INFO, logger="bam_assets.reading.reader"):
        assert_same_as_htslib(path, 500)
    assert "htslib takes over" in caplog.text and "from record 1001" in caplog.text
    rows = read_table(path, True, 500).column("tags").to_pylist()
    assert rows[1234].endswith("YF:B:f,0.1,-2.5e-07,3")


@pytest.mark.parametrize(
    "extra", ["XU:Z:caf\u00e9", "XI:f:inf", "XN:f:-inf", "XS:B:S", "XC:B:c,-128,127"]
)
def test_edge_values_decode_as_htslib_formats_them(tmp_path: Path, extra: str):
    """Non-ASCII text is left to htslib (the bulk decoder stops at its chunk); infinities and
    empty or extreme arrays are decoded in bulk."""
    path = tmp_path / "edge.bam"
    write_varied_bam(path, 300, seed=9, extra_tags={150: extra})
    if extra.startswith("XU"):
        with pytest.raises(NeedsHtslib, match="non-ASCII"):
            decoded_records(path, 100)
    else:
        assert decoded_records(path, 100) == 300
    assert_same_as_htslib(path, 100)
    assert read_table(path, True, 100).column("tags")[150].as_py().endswith(extra)


def _error_of(path: Path, bulk: bool) -> str:
    with pytest.raises(AlignmentReadError) as raised:
        read_table(path, bulk, 64)
    return str(raised.value)


@pytest.mark.parametrize("size", [0, 20, 35, 10**6, -400])
def test_a_corrupt_record_size_fails_with_htslib_s_error(tmp_path: Path, size: int):
    """A wrong ``block_size`` mid-file: the bulk decoder hands the chunk to htslib, whose error
    (file, cause, record reached) the run reports, exactly as without the bulk decoder."""
    varied = tmp_path / "varied.bam"
    write_varied_bam(varied, 300, seed=7)
    stored = tmp_path / "stored.bam"  # level 0: each record's bytes lie in the file as they are
    with pysam.AlignmentFile(str(varied), check_sq=False) as source:
        with pysam.AlignmentFile(str(stored), "wb0", template=source) as out:
            for index, record in enumerate(source.fetch(until_eof=True)):
                if index == 200:
                    record.query_name = "corrupt_me"
                out.write(record)
    data = bytearray(stored.read_bytes())
    size_at = data.index(b"corrupt_me\x00") - 36
    block_start, block_size = next(
        (start, size) for start, size in bgzf_blocks(data) if start < size_at < start + size
    )
    block_end = block_start + block_size
    data[size_at : size_at + 4] = size.to_bytes(4, "little", signed=True)
    payload = zlib.decompress(bytes(data[block_start + 18 : block_end - 8]), -15)
    data[block_end - 8 : block_end - 4] = zlib.crc32(payload).to_bytes(4, "little")
    stored.write_bytes(bytes(data))
    message = _error_of(stored, bulk=True)
    assert str(stored) in message
    assert message == _error_of(stored, bulk=False)
