"""Reproducible synthetic alignment files for the example data, the tests and the benchmarks.

Reads come in pairs with realistic flags (proper pairs in both orientations, duplicates, QC
failures, secondary and supplementary alignments, soft clips and indels), a variety of tag types
(``i``, ``f``, ``Z``, ``A``, ``B``) and a tail of unplaced unmapped pairs. The SAM text is written
by Python and compressed to BAM by samtools (through pysam), so generation is fast enough for
millions of reads.
"""

import argparse
import random
from pathlib import Path

import pysam

CONTIGS = (("chr1", 2_000_000), ("chr2", 1_500_000), ("chrM", 16_569))
_BASES = "ACGT"


def _quality(rng: random.Random, length: int) -> str:
    return "".join(chr(33 + rng.randint(2, 40)) for _ in range(length))


def _cigar(rng: random.Random, length: int) -> str:
    roll = rng.random()
    if roll < 0.80:
        return f"{length}M"
    if roll < 0.90:
        clip = rng.randint(1, 20)
        return f"{clip}S{length - clip}M"
    if roll < 0.95:
        left = rng.randint(10, length - 10)
        return f"{left}M2I{length - left - 2}M"
    left = rng.randint(10, length - 10)
    return f"{left}M3D{length - left}M"


def _header(sorted_by: str) -> str:
    lines = [f"@HD\tVN:1.6\tSO:{sorted_by}"]
    lines += [f"@SQ\tSN:{name}\tLN:{length}" for name, length in CONTIGS]
    lines.append("@RG\tID:rg1\tSM:synthetic\tPL:ILLUMINA")
    lines.append("@CO\tsynthetic reads made by bam_assets.synthetic_bam")
    return "\n".join(lines) + "\n"


def _pair_lines(rng: random.Random, index: int, read_length: int) -> list[str]:
    name = f"read{index:09d}"
    contig, contig_length = CONTIGS[0] if rng.random() < 0.6 else CONTIGS[rng.randint(1, 2)]
    insert = max(read_length, int(rng.gauss(350, 60)))
    left = rng.randint(1, max(1, contig_length - insert - 1))
    right = left + insert - read_length
    forward_first = rng.random() < 0.5
    extra = 0
    if rng.random() < 0.05:
        extra |= 0x400
    if rng.random() < 0.01:
        extra |= 0x200
    proper = 0x2 if rng.random() < 0.95 else 0
    lines = []
    for mate, (pos, mate_pos, reverse) in enumerate(
        ((left, right, not forward_first), (right, left, forward_first))
    ):
        flag = 0x1 | proper | extra | (0x40 if mate == 0 else 0x80)
        flag |= 0x10 if reverse else 0
        flag |= 0x20 if not reverse else 0
        tlen = insert if pos == left else -insert
        seq = "".join(rng.choices(_BASES, k=read_length))
        mismatches = rng.choice((0, 0, 0, 1, 2))
        tags = (
            f"NM:i:{mismatches}\tAS:i:{read_length - 5 * mismatches}\tXS:i:{rng.randint(0, 60)}"
            f"\tRG:Z:rg1\tXA:A:{rng.choice('PSU')}\tXF:f:{rng.random() * 10:g}"
        )
        if rng.random() < 0.1:
            tags += f"\tZB:B:s,{rng.randint(-5, 5)},{rng.randint(0, 300)},{rng.randint(-99, 99)}"
        lines.append(
            f"{name}\t{flag}\t{contig}\t{pos}\t{rng.choice((0, 20, 60, 60, 60))}\t"
            f"{_cigar(rng, read_length)}\t=\t{mate_pos}\t{tlen}\t{seq}\t"
            f"{_quality(rng, read_length)}\t{tags}"
        )
    roll = rng.random()
    if roll < 0.02:
        first = lines[0].split("\t")
        first[1] = str(int(first[1]) | 0x100)
        first[3] = str(min(contig_length - read_length, int(first[3]) + 5000))
        first[9] = first[10] = "*"
        lines.append("\t".join(first))
    elif roll < 0.03:
        first = lines[0].split("\t")
        first[1] = str(int(first[1]) | 0x800)
        first[5] = f"{read_length // 2}H{read_length - read_length // 2}M"
        first[9] = first[9][read_length // 2 :]
        first[10] = first[10][read_length // 2 :]
        lines.append("\t".join(first))
    return lines


def _unmapped_pair_lines(rng: random.Random, index: int, read_length: int) -> list[str]:
    name = f"unmapped{index:09d}"
    lines = []
    for mate_flag in (0x40, 0x80):
        seq = "".join(rng.choices(_BASES, k=read_length))
        lines.append(
            f"{name}\t{0x1 | 0x4 | 0x8 | mate_flag}\t*\t0\t0\t*\t*\t0\t0\t{seq}\t"
            f"{_quality(rng, read_length)}\tRG:Z:rg1"
        )
    return lines


def write_synthetic_sam(path: Path, reads: int, seed: int = 7, read_length: int = 100) -> Path:
    """Writes about ``reads`` records (pairs plus extras, 2% unmapped tail) as SAM text."""
    rng = random.Random(seed)
    pairs = max(1, reads // 2)
    unmapped_pairs = max(1, pairs // 50)
    with path.open("w") as handle:
        handle.write(_header("unsorted"))
        for index in range(pairs - unmapped_pairs):
            handle.write("\n".join(_pair_lines(rng, index, read_length)) + "\n")
        for index in range(unmapped_pairs):
            handle.write("\n".join(_unmapped_pair_lines(rng, index, read_length)) + "\n")
    return path


def write_synthetic_bam(path: Path, reads: int, seed: int = 7, read_length: int = 100) -> Path:
    """Writes a synthetic BAM of about ``reads`` records to ``path`` and returns ``path``."""
    sam = path.with_suffix(".tmp.sam")
    write_synthetic_sam(sam, reads, seed=seed, read_length=read_length)
    try:
        pysam.view("-b", "--no-PG", "-o", str(path), str(sam), catch_stdout=False)
    finally:
        sam.unlink()
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m bam_assets.reading.synthetic_bam OUT.bam [--reads N] [--seed S]``."""
    parser = argparse.ArgumentParser(
        prog="python -m bam_assets.reading.synthetic_bam",
        description="Write a reproducible synthetic alignment file of paired reads (BAM, or SAM "
        "when the name ends in .sam).",
    )
    parser.add_argument("path", type=Path, help="file to write")
    parser.add_argument("--reads", type=int, default=10_000, help="records (default 10,000)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument("--read-length", type=int, default=100, help="bases (default 100)")
    arguments = parser.parse_args(argv)
    write = write_synthetic_sam if arguments.path.suffix == ".sam" else write_synthetic_bam
    write(arguments.path, arguments.reads, arguments.seed, arguments.read_length)


if __name__ == "__main__":
    main()
