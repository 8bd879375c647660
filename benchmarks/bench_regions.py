"""Region queries on a big partition: ``bam-assets view`` against ``samtools view`` with a .bai.

The synthetic 150-bp BAM of ``bench_ingest.py`` (default 10M reads, seed 7, cached in
``benchmarks/out``) is unsorted, as the generator writes it; a coordinate-sorted, indexed copy is
made for samtools (``samtools sort``/``index`` through pysam). Both files are ingested into a
local store of their own (cached too), so the same queries run on a partition in random order (no
row group can be skipped) and on one in coordinate order (DuckDB skips the row groups whose
``rname``/``pos`` min/max cannot match).

Each query is timed in this process, best of ``--repeats``: samtools through pysam on the sorted
BAM and its index, bam-assets through ``count()``/``export()`` on each store; the outputs are
checked to agree. Then whole processes: the CLI's start-up on a tiny region, and a whole-file
``bam-assets view`` to /dev/null for its peak RSS (records are read in rec_no windows, so memory
stays flat). The process is pinned to ``--cpus`` CPUs, as DuckDB and htslib would be.

    python benchmarks/bench_regions.py                 # 10M reads, 2 CPUs, ~40 min the first time
    python benchmarks/bench_regions.py --reads 1000000 --cpus 1
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pysam
from bench_ingest import OUT, _bam_assets, synthetic_bam

from bam_assets.orchestration.export import count, export
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import StoreSettings

# Regions of the synthetic genome (chr1 2 Mb with 60% of the reads, chr2 1.5 Mb, chrM 16.6 kb).
REGIONS = [
    ("1 kb", "chr1:1,000,001-1,001,000"),
    ("100 kb", "chr1:1,000,001-1,100,000"),
    ("chr2 (1.5 Mb)", "chr2"),
]


def sorted_copy(bam: Path, cpus: int) -> Path:
    """The coordinate-sorted, indexed copy of ``bam`` (made once)."""
    path = bam.with_name(f"{bam.stem}.sorted.bam")
    if not path.exists():
        partial = path.with_name(f"{path.stem}.partial.bam")
        sys.stderr.write(f"sorting {bam.name} ...\n")
        pysam.sort("-@", str(cpus), "-m", "512M", "-o", str(partial), str(bam))
        partial.rename(path)
    if not Path(f"{path}.bai").exists():
        pysam.index(str(path))
    return path


def ingested(bam: Path) -> Path:
    """The catalog of a local store holding ``bam`` as its only partition (ingested once, by the
    CLI; the store's folder is renamed into place when complete)."""
    folder = bam.with_name(f"{bam.stem}.store")
    if not folder.exists():
        partial = folder.with_name(f"{folder.name}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        sys.stderr.write(f"ingesting {bam.name} ...\n")
        with tempfile.TemporaryDirectory(dir=OUT) as home:
            subprocess.run(
                [_bam_assets(), "ingest", str(bam), "--db", str(partial / "bam_assets.sqlite")],
                check=True,
                env={**os.environ, "DAGSTER_HOME": home},
                stdout=subprocess.DEVNULL,
            )
        partial.rename(folder)
    return folder / "bam_assets.sqlite"


def best_of(repeats: int, work: Callable[[], object]) -> tuple[float, object]:
    """The shortest wall time of ``repeats`` runs of ``work``, and what it returned."""
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - started)
    return min(times), result


# Starts the command from a small interpreter and prints its peak RSS in KB. A child started
# straight from this process shares its memory until it executes the command (vfork), so its
# ru_maxrss would be this process's footprint (over 1 GB after the in-process queries).
_PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
    "sys.stderr.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)); "
    "sys.exit(code)"
)


def whole_process(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``command``, its output discarded."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    seconds = time.perf_counter() - started
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr[-2000:]}")
    return seconds, int(result.stderr.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cpus", type=int, default=2, help="CPUs to pin to (0 .. N-1)")
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()
    os.sched_setaffinity(0, set(range(arguments.cpus)))
    unsorted = synthetic_bam(arguments.reads, arguments.seed, read_length=150)
    by_coordinate = sorted_copy(unsorted, arguments.cpus)
    stores = {
        "unsorted": (
            StoreResource(settings=StoreSettings(database=str(ingested(unsorted)))),
            unsorted.name,
        ),
        "sorted": (
            StoreResource(settings=StoreSettings(database=str(ingested(by_coordinate)))),
            by_coordinate.name,
        ),
    }
    rows = []
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        sam, bam = Path(folder) / "out.sam", Path(folder) / "out.bam"
        for label, region in REGIONS:
            seconds, expected = best_of(
                arguments.repeats, lambda r=region: int(pysam.view("-c", str(by_coordinate), r))
            )
            row = {"region": label, "records": expected, "samtools -c": seconds}
            for name, (store, key) in stores.items():
                seconds, counted = best_of(
                    arguments.repeats, lambda s=store, k=key, r=region: count(s, k, [r])
                )
                assert counted == expected, (name, region, counted, expected)
                row[f"{name} -c"] = seconds
            row["samtools SAM"], _ = best_of(
                arguments.repeats,
                lambda r=region: pysam.view(
                    "-o", str(sam), str(by_coordinate), r, catch_stdout=False
                ),
            )
            theirs = sam.read_text()
            row["samtools BAM"], _ = best_of(
                arguments.repeats,
                lambda r=region: pysam.view(
                    "-b", "-o", str(bam), str(by_coordinate), r, catch_stdout=False
                ),
            )
            for name, (store, key) in stores.items():
                row[f"{name} SAM"], _ = best_of(
                    arguments.repeats, lambda s=store, k=key, r=region: export(s, k, [r], sam)
                )
                ours = sam.read_text()
                if name == "sorted":
                    assert ours == theirs, region
                else:  # the same records, in the unsorted file's order
                    assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), region
                row[f"{name} BAM"], _ = best_of(
                    arguments.repeats, lambda s=store, k=key, r=region: export(s, k, [r], bam)
                )
            rows.append(row)
    startup, _ = whole_process(
        [
            _bam_assets(),
            "view",
            "-c",
            "--db",
            str(ingested(by_coordinate)),
            by_coordinate.name,
            "chr1:1-10",
        ]
    )
    whole_seconds, whole_rss = whole_process(
        [_bam_assets(), "view", "--db", str(ingested(unsorted)), unsorted.name]
    )
    samtools_seconds, samtools_rss = whole_process(
        [
            sys.executable,
            "-c",
            f"import pysam; pysam.view('-o', '/dev/null', {str(unsorted)!r}, catch_stdout=False)",
        ]
    )
    out = sys.stdout
    out.write(
        f"# {arguments.reads:,} reads (150 bp), {platform.processor() or platform.machine()}, "
        f"pinned to {arguments.cpus} CPU(s), Python {platform.python_version()}, best of "
        f"{arguments.repeats}; seconds\n\n"
    )
    columns = [
        "records",
        "samtools -c",
        "unsorted -c",
        "sorted -c",
        "samtools SAM",
        "unsorted SAM",
        "sorted SAM",
        "samtools BAM",
        "unsorted BAM",
        "sorted BAM",
    ]
    out.write("| region | " + " | ".join(columns) + " |\n")
    out.write("|---|" + "---:|" * len(columns) + "\n")
    for row in rows:
        cells = [f"{row['records']:,}"] + [f"{row[column]:.2f}" for column in columns[1:]]
        out.write(f"| {row['region']} | " + " | ".join(cells) + " |\n")
    out.write(
        f"\n- `bam-assets view -c` of a tiny region as a whole process (start-up included): "
        f"{startup:.2f} s\n"
        f"- whole-file `bam-assets view` of the unsorted partition to /dev/null: "
        f"{whole_seconds:.1f} s, peak RSS {whole_rss:.0f} MB "
        f"(`samtools view` of the BAM: {samtools_seconds:.1f} s, {samtools_rss:.0f} MB)\n"
    )


if __name__ == "__main__":
    main()
