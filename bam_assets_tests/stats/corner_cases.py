"""Generated SAM/BAM files that reach the corners of ``samtools stats`` the real files miss.

Barcode tags (BC/QT, CR/CY, OX/BZ, RX/QX) with separators, errors, other lengths and non-Z types;
QUAL '*'; '=' and IUPAC bases; hard clips; paired reads that are neither or both READ1/READ2; I/D
at read ends; indels longer than 300; =/X/N/P operations; MAPQ 255; huge TLEN; several reference
runs (chr1, chr2, chr1) in a sorted file; an unsorted file; long spliced reads (the coverage ring
buffer's reallocations and wrap-around). Fixed seed.
"""

import random
from pathlib import Path

import pysam

CONTIGS = (("chr1", 300_000), ("chr2", 200_000), ("chr3", 5_000_000))
IUPAC = "RYSWKMBDHVN="


def header() -> str:
    lines = ["@HD\tVN:1.6\tSO:unsorted"]
    lines += [f"@SQ\tSN:{name}\tLN:{length}" for name, length in CONTIGS]
    return "\n".join(lines) + "\n"


def random_seq(rng: random.Random, n: int) -> str:
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.93:
            out.append(rng.choice("ACGT"))
        elif r < 0.97:
            out.append("N")
        else:
            out.append(rng.choice(IUPAC))
    return "".join(out)


def random_cigar(rng: random.Random, qlen: int, long_ops: bool) -> tuple[str, int]:
    """A CIGAR consuming exactly qlen query bases; returns (cigar, reference span)."""
    ops = []
    left = qlen
    if rng.random() < 0.15:
        ops.append((rng.randint(1, 30), "H"))
    if rng.random() < 0.2 and left > 20:
        s = rng.randint(1, 10)
        ops.append((s, "S"))
        left -= s
    if rng.random() < 0.03 and left > 10:  # insertion first: IC index 0 / rev end
        i = rng.randint(1, 3)
        ops.append((i, "I"))
        left -= i
    if rng.random() < 0.03:  # deletion first: "meaningless", dropped
        ops.append((rng.randint(1, 3), "D"))
    while left > 0:
        m = min(left, rng.randint(5, 80))
        kind = rng.random()
        if kind < 0.1 and m > 2:
            half = m // 2
            ops.append((half, "="))
            ops.append((m - half, "X"))
        else:
            ops.append((m, "M"))
        left -= m
        if left <= 0:
            break
        r = rng.random()
        if r < 0.25:
            i = min(left, rng.randint(1, 6))
            ops.append((i, "I"))
            left -= i
        elif r < 0.45:
            ops.append((rng.randint(1, 8), "D"))
        elif r < 0.5 and long_ops:
            ops.append((rng.randint(301, 400), "D"))  # longer than nindels
        elif r < 0.55 and long_ops:
            ops.append((rng.randint(1000, 4000), "N"))
        elif r < 0.57:
            ops.append((rng.randint(1, 3), "P"))
    if rng.random() < 0.03:
        ops.append((rng.randint(1, 3), "D"))
    if rng.random() < 0.1:
        ops.append((rng.randint(1, 20), "H"))
    # merge adjacent equal ops
    merged = []
    for n, op in ops:
        if merged and merged[-1][1] == op:
            merged[-1] = (merged[-1][0] + n, op)
        else:
            merged.append((n, op))
    span = sum(n for n, op in merged if op in "MDN=X")
    return "".join(f"{n}{op}" for n, op in merged), span


def barcode_tags(rng: random.Random) -> list[str]:
    tags = []
    r = rng.random()
    if r < 0.6:
        bc = "".join(rng.choice("ACGTN") for _ in range(8))
        if rng.random() < 0.7:
            bc = bc[:4] + "-" + bc[4:]  # separator at 4
        if rng.random() < 0.05:
            bc = bc[:2] + "+" + bc[3:]  # separator elsewhere: an error part-way
        if rng.random() < 0.05:
            bc = bc + "AC"  # longer than the first: skipped
        if rng.random() < 0.05:
            bc = bc[:5]  # shorter
        tags.append(f"BC:Z:{bc}")
        if rng.random() < 0.8:
            q = "".join(chr(33 + rng.randint(0, 41)) for _ in range(len(bc)))
            if rng.random() < 0.05:
                q = q[:-1]  # length mismatch
            tags.append(f"QT:Z:{q}")
    elif r < 0.65:
        tags.append("BC:i:5")  # not a string: bam_aux2Z gives NULL
    elif r < 0.68:
        tags.append("BC:Z:")  # empty: counts as none
    if rng.random() < 0.5:
        umi = "".join(rng.choice("ACGT") for _ in range(10))
        tags.append(f"RX:Z:{umi}")
        tags.append("QX:Z:" + "".join(chr(33 + rng.randint(20, 40)) for _ in umi))
    if rng.random() < 0.3:
        cb = "".join(rng.choice("ACGTN") for _ in range(16))
        tags.append(f"CR:Z:{cb}")
        tags.append("CY:Z:" + "".join(chr(33 + rng.randint(0, 40)) for _ in cb))
    if rng.random() < 0.2:
        ox = (
            "".join(rng.choice("ACGT") for _ in range(6))
            + "_"
            + "".join(rng.choice("ACGT") for _ in range(6))
        )
        tags.append(f"OX:Z:{ox}")
        tags.append("BZ:Z:" + "".join(chr(33 + rng.randint(0, 30)) for _ in ox))
    return tags


def records(
    rng: random.Random, n: int, long_reads: bool, span: int = 0, short_ops_only: bool = False
) -> list[tuple]:
    out = []
    for i in range(n):
        contig_index = 0 if rng.random() < 0.6 else 1
        contig, length = CONTIGS[2] if long_reads else CONTIGS[contig_index]
        qlen = (
            rng.randint(300, 900)
            if long_reads and rng.random() < 0.5
            else rng.choice((1, 2, 35, 50, 100, 100, 100, 150, 151))
        )
        seq = random_seq(rng, qlen)
        qual = "".join(chr(33 + rng.randint(0, 60)) for _ in range(qlen))
        if rng.random() < 0.05:
            qual = "*"
        flag = 0
        if rng.random() < 0.8:
            flag |= 0x1
            r = rng.random()
            flag |= 0x40 if r < 0.45 else 0x80 if r < 0.9 else 0xC0 if r < 0.95 else 0
            if rng.random() < 0.7:
                flag |= 0x2
            if rng.random() < 0.1:
                flag |= 0x8
            if rng.random() < 0.5:
                flag |= 0x20
        if rng.random() < 0.5:
            flag |= 0x10
        if rng.random() < 0.05:
            flag |= 0x400
        if rng.random() < 0.03:
            flag |= 0x200
        r = rng.random()
        if r < 0.05:
            flag |= 0x100
        elif r < 0.1:
            flag |= 0x800
        unmapped = rng.random() < 0.08
        if unmapped:
            flag |= 0x4
        pos = rng.randint(1, (span or length) - 10_000 if not span else span)
        cigar, _ = random_cigar(
            rng, qlen, not short_ops_only and (long_reads or rng.random() < 0.05)
        )
        mapq = rng.choice((0, 0, 1, 20, 60, 60, 60, 255))
        if unmapped:
            cigar, mapq = "*", 0
        if flag & 0x100 and rng.random() < 0.5:
            seq, qual = "*", "*"
        rnext, pnext, tlen = "*", 0, 0
        if flag & 0x1:
            r = rng.random()
            if r < 0.8:
                rnext = "="
                pnext = max(1, pos + rng.randint(-600, 600))
                tlen = rng.choice((1, -1)) * rng.randint(0, 900)
                if rng.random() < 0.02:
                    tlen = rng.choice((1, -1)) * rng.randint(8000, 50000)
                if rng.random() < 0.02:
                    pnext = pos
            elif r < 0.9:
                rnext = CONTIGS[1 - contig_index][0]
                pnext = rng.randint(1, 1000)
        tags = []
        if rng.random() < 0.8:
            tags.append(f"NM:i:{rng.randint(0, 10)}")
        tags += barcode_tags(rng)
        out.append(
            [f"r{i:06d}", flag, contig, pos, mapq, cigar, rnext, pnext, tlen, seq, qual, tags]
        )
    return out


def write(path: Path, recs: list, sort: bool, runs: bool) -> None:
    if sort:
        recs = sorted(recs, key=lambda r: ([c[0] for c in CONTIGS].index(r[2]), r[3]))
        if runs:  # chr1 ... chr2 ... chr1 again: still 'sorted' for samtools stats
            chr1 = [r for r in recs if r[2] == "chr1"]
            rest = [r for r in recs if r[2] != "chr1"]
            half = len(chr1) // 2
            recs = chr1[:half] + rest + chr1[half:]
    with open(path, "w") as f:
        f.write(header())
        for r in recs:
            f.write("\t".join(map(str, r[:11])) + ("\t" + "\t".join(r[11]) if r[11] else "") + "\n")


def write_corner_cases(folder: Path) -> list[Path]:
    """Writes the four corner-case files (one also as SAM) into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20240611)
    base = records(rng, 4000, long_reads=False)
    write(folder / "corner_sorted_runs.sam", base, sort=True, runs=True)
    write(folder / "corner_unsorted.sam", base, sort=False, runs=False)
    write(
        folder / "corner_long_spliced.sam",
        records(rng, 600, long_reads=True),
        sort=True,
        runs=False,
    )
    # Depth in the tens, many GC-depth bins, no reference span >= 1500 and no read >= 300 bases:
    # the coverage sweep in SQL applies.
    dense = records(rng, 6000, long_reads=False, span=120_000, short_ops_only=True)
    write(folder / "corner_dense_runs.sam", dense, sort=True, runs=True)
    paths = [folder / "corner_unsorted.sam"]
    for name in ("corner_sorted_runs", "corner_long_spliced", "corner_dense_runs"):
        pysam.view(
            "-b",
            "--no-PG",
            "-o",
            str(folder / f"{name}.bam"),
            str(folder / f"{name}.sam"),
            catch_stdout=False,
        )
        (folder / f"{name}.sam").unlink()
        paths.append(folder / f"{name}.bam")
    return paths
