"""make_seeds.py OUT_DIR REAL_DIR: the seed corpus of the fuzzer, in its input format
(``bam_assets_tests/differential.py``), built at run time (nothing of it is committed).

From every BAM and SAM file in REAL_DIR (the real test files, ``../shared/test-data/real``)
and every hostile BAM of ``bam_assets_tests.hostile``: the file itself when small (mode 0), the
start of its uncompressed stream (mode 1), and the start of its records behind the fuzzer's fixed
header, in ordinary and in small, damaged blocks (modes 2 and 3).
"""

import gzip
import hashlib
import struct
import sys
import tempfile
import zlib
from pathlib import Path

import pysam

from bam_assets_tests.hostile import write_all

WHOLE_FILE_BYTES = 20_000  # the session's -max_len
STREAM_BYTES = 8_000
RECORD_BYTES = 4_000


def _records_start(stream: bytes) -> int | None:
    """Where the records of an uncompressed BAM stream begin, or None."""
    try:
        if stream[:4] != b"BAM\x01":
            return None
        (l_text,) = struct.unpack_from("<i", stream, 4)
        position = 8 + l_text
        (n_ref,) = struct.unpack_from("<i", stream, position)
        position += 4
        for _ in range(n_ref):
            (l_name,) = struct.unpack_from("<i", stream, position)
            position += 8 + l_name
    except struct.error:
        return None
    return position


def seeds_of(data: bytes) -> list[bytes]:
    seeds = [b"\x00\x00" + data] if len(data) < WHOLE_FILE_BYTES else []
    try:
        stream = gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return seeds
    seeds.append(b"\x01\x00" + stream[:STREAM_BYTES])
    start = _records_start(stream)
    if start is not None and len(stream) > start:
        records = stream[start : start + RECORD_BYTES]
        seeds.append(b"\x02\x01" + records)
        seeds.append(b"\x03\x28" + bytes(4) + records[:1500])
    return seeds


def bam_bytes(path: Path, folder: Path) -> bytes | None:
    if path.suffix == ".bam":
        return path.read_bytes()
    if path.suffix != ".sam":
        return None
    converted = folder / f"{path.stem}.bam"
    pysam.view("-b", "-o", str(converted), str(path), catch_stdout=False)
    return converted.read_bytes()


def main() -> None:
    out, real = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        files = sorted(real.iterdir()) + write_all(folder / "hostile")
        contents = [bam_bytes(path, folder) for path in files]
        seeds = [seed for data in contents if data is not None for seed in seeds_of(data)]
    for seed in seeds:
        (out / hashlib.sha1(seed).hexdigest()).write_bytes(seed)
    sys.stdout.write(f"{len(seeds)} seeds in {out}\n")


if __name__ == "__main__":
    main()
