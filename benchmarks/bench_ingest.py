"""Ingest throughput and peak memory: ``bam-assets ingest`` beside oxbow and ``samtools view -c``.

For each size, a synthetic BAM of 150-bp paired reads (``bam_assets.reading.synthetic_bam``, fixed
seed) is generated once and cached under ``benchmarks/out/``. Each workload then runs as its own
subprocess pinned to the given CPUs (``sched_setaffinity``), alternating between workloads, and
the harness records the wall time (whole process: interpreter, imports, Dagster start-up) and the
peak RSS (``ru_maxrss`` of the child from ``os.wait4``):

- ``ingest``: ``bam-assets ingest FILE --db fresh.duckdb`` (a fresh database each run; one Dagster
  home for the whole benchmark, initialised by a warm-up ingest, as a user's second run sees it);
- ``oxbow``: oxbow's Arrow batches, tags included, into a DuckDB table (``workloads.py``);
- ``samtools``: ``samtools view -c`` through pysam, the decode floor.

CPU seconds (user + system of the child) are reported beside wall time: on a shared machine they
are the steadier figure, and with one CPU they are what wall time would be without neighbours.

It prints a Markdown table (best of ``--repeats``) with reads/s, MB/s, peak RSS and the speed-up
of ingest over oxbow, and writes a PNG plot of throughput and peak RSS against file size.

    pip install -e '.[bench]'
    python benchmarks/bench_ingest.py                       # 0.3M, 1M, 2.9M reads; 1 and 2 CPUs
    python benchmarks/bench_ingest.py --sizes 300000,1000000,2900000,10000000 --repeats 3

Generating 10M reads takes about 12 minutes the first time, hence not in the default sizes.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
WORKLOADS = ("ingest", "oxbow", "samtools")
WORKLOADS_SCRIPT = HERE / "workloads.py"


@dataclass
class Measurement:
    workload: str
    cpus: int
    target_reads: int
    records: int
    size_mb: float
    seconds: float
    cpu_seconds: float
    peak_rss_mb: float

    @property
    def reads_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def mb_per_second(self) -> float:
        return self.size_mb / self.seconds


def synthetic_bam(reads: int, seed: int, read_length: int) -> Path:
    """The cached BAM for ``reads``/``seed``/``read_length``, generated on first use."""
    path = OUT / f"synthetic_{reads}_seed{seed}_{read_length}bp.bam"
    if not path.exists():
        from bam_assets.reading.synthetic_bam import write_synthetic_bam

        OUT.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.bam")
        sys.stderr.write(f"generating {path.name} ...\n")
        write_synthetic_bam(partial, reads, seed=seed, read_length=read_length)
        partial.rename(path)
    return path


def run_pinned(
    command: list[str], cpus: int, env: dict[str, str]
) -> tuple[float, float, float, str]:
    """Runs ``command`` on CPUs 0..cpus-1; returns wall and CPU seconds, peak RSS (MB), stdout."""
    cpu_set = set(range(cpus))
    with tempfile.TemporaryFile() as stdout:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, cpu_set),
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        stderr = process.stderr.read().decode() if process.stderr else ""
        stdout.seek(0)
        output = stdout.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}):\n{stderr}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output


def warm_dagster_home(home: Path) -> None:
    """Creates the Dagster instance's storage once (schema migrations are a one-time cost)."""
    example = Path(__file__).resolve().parents[1] / "bam_assets/example_data/unaligned.sam"
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        run_pinned([_bam_assets(), "ingest", str(example), "--db", f"{folder}/warm.duckdb"], 1, env)


def measure(
    workload: str, bam: Path, cpus: int, target_reads: int, dagster_home: Path
) -> Measurement:
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        scratch = Path(folder)
        env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
        database = str(scratch / "bench.duckdb")
        if workload == "ingest":
            command = [_bam_assets(), "ingest", str(bam), "--db", database]
        elif workload == "oxbow":
            command = [sys.executable, str(WORKLOADS_SCRIPT), "oxbow-duckdb", str(bam), database]
        else:
            command = [sys.executable, str(WORKLOADS_SCRIPT), "samtools-count", str(bam)]
        seconds, cpu_seconds, peak, output = run_pinned(command, cpus, env)
    records = int(output.split("\t")[1].split()[0]) if workload == "ingest" else int(output)
    return Measurement(
        workload, cpus, target_reads, records, bam.stat().st_size / 1e6, seconds, cpu_seconds, peak
    )


def _bam_assets() -> str:
    found = shutil.which("bam-assets", path=str(Path(sys.executable).parent))
    return found or shutil.which("bam-assets") or "bam-assets"


def best(results: list[Measurement]) -> dict[tuple[str, int, int], Measurement]:
    """The fastest run of each (workload, cpus, size); its peak RSS is the highest seen."""
    chosen: dict[tuple[str, int, int], Measurement] = {}
    for result in results:
        key = (result.workload, result.cpus, result.target_reads)
        if key not in chosen:
            chosen[key] = Measurement(**asdict(result))
            continue
        kept = chosen[key]
        kept.peak_rss_mb = max(kept.peak_rss_mb, result.peak_rss_mb)
        if result.seconds < kept.seconds:
            kept.seconds, kept.cpu_seconds = result.seconds, result.cpu_seconds
    return chosen


def table(results: list[Measurement], sizes: list[int], cpu_counts: list[int]) -> str:
    chosen = best(results)
    lines = [
        "| reads | CPUs | workload | wall s | CPU s | reads/s | MB/s | peak RSS MB "
        "| oxbow time / ingest time (wall, CPU) |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for size in sizes:
        for cpus in cpu_counts:
            oxbow = chosen.get(("oxbow", cpus, size))
            for workload in WORKLOADS:
                result = chosen.get((workload, cpus, size))
                if result is None:
                    continue
                ratio = ""
                if workload == "ingest" and oxbow is not None:
                    ratio = (
                        f"**{oxbow.seconds / result.seconds:.2f}x**, "
                        f"{oxbow.cpu_seconds / result.cpu_seconds:.2f}x"
                    )
                lines.append(
                    f"| {result.records:,} | {cpus} | {workload} | {result.seconds:.2f} | "
                    f"{result.cpu_seconds:.2f} | "
                    f"{result.reads_per_second / 1000:,.0f}k | {result.mb_per_second:.1f} | "
                    f"{result.peak_rss_mb:.0f} | {ratio} |"
                )
    flat = []
    for cpus in cpu_counts:
        ingest = [chosen[("ingest", cpus, s)] for s in sizes if ("ingest", cpus, s) in chosen]
        if len(ingest) >= 2:
            growth = ingest[-1].peak_rss_mb / ingest[0].peak_rss_mb - 1
            flat.append(
                f"ingest peak RSS, {cpus} CPU(s): {ingest[0].peak_rss_mb:.0f} MB at "
                f"{ingest[0].records:,} reads, {ingest[-1].peak_rss_mb:.0f} MB at "
                f"{ingest[-1].records:,} reads ({growth:+.1%})"
            )
    return "\n".join(lines) + ("\n\n" + "\n".join(f"- {line}" for line in flat) if flat else "")


def plot(results: list[Measurement], cpu_counts: list[int], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = best(results)
    figure, (speed, memory) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"ingest": "C0", "oxbow": "C3", "samtools": "C7"}
    for workload in WORKLOADS:
        for cpus in cpu_counts:
            points = sorted(
                (m.records, m) for (w, c, _), m in chosen.items() if w == workload and c == cpus
            )
            if not points:
                continue
            xs = [records / 1e6 for records, _ in points]
            line = "-" if cpus == 1 else "--"
            label = f"{'bam-assets ingest' if workload == 'ingest' else workload}, {cpus} CPU"
            speed.plot(
                xs,
                [m.reads_per_second / 1000 for _, m in points],
                line,
                marker="o",
                color=styles[workload],
                label=label,
            )
            if workload != "samtools":
                memory.plot(
                    xs,
                    [m.peak_rss_mb for _, m in points],
                    line,
                    marker="o",
                    color=styles[workload],
                    label=label,
                )
    speed.set(
        xscale="log",
        xlabel="reads (millions)",
        ylabel="thousand reads/s",
        title="Throughput (whole process)",
    )
    memory.set(xscale="log", xlabel="reads (millions)", ylabel="MB", title="Peak RSS")
    memory.axhline(400, color="k", linewidth=0.8, linestyle=":", label="400 MB target")
    speed.set_ylim(bottom=0)
    memory.set_ylim(bottom=0)
    sizes = sorted({m.records / 1e6 for m in chosen.values()})
    for axes in (speed, memory):
        axes.set_xticks(sizes, [f"{size:.2g}" for size in sizes])
        axes.minorticks_off()
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="300000,1000000,2900000",
        help="comma-separated read counts (default: %(default)s)",
    )
    parser.add_argument("--cpus", default="1,2", help="CPU counts to pin to (default: %(default)s)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--read-length", type=int, default=150)
    parser.add_argument("--plot", type=Path, default=HERE / "ingest_benchmark.png")
    parser.add_argument("--json", type=Path, default=OUT / "ingest_benchmark.json")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    cpu_counts = [int(cpus) for cpus in arguments.cpus.split(",")]
    workloads = arguments.workloads.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    results: list[Measurement] = []
    home = Path(tempfile.mkdtemp(dir=OUT, prefix="dagster_home_"))
    warm_dagster_home(home)
    for size in sizes:
        bam = synthetic_bam(size, arguments.seed, arguments.read_length)
        for _ in range(arguments.repeats):
            for cpus in cpu_counts:
                for workload in workloads:
                    result = measure(workload, bam, cpus, size, home)
                    sys.stderr.write(
                        f"{workload:8} {cpus} CPU {result.records:>10,} reads "
                        f"{result.seconds:7.2f} s {result.reads_per_second / 1000:6.0f}k reads/s "
                        f"{result.peak_rss_mb:6.0f} MB\n"
                    )
                    results.append(result)
    arguments.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    sys.stdout.write(f"Machine: {machine()}\n\n{table(results, sizes, cpu_counts)}\n")
    if arguments.plot and len(sizes) > 1:
        plot(results, cpu_counts, arguments.plot)
        sys.stdout.write(f"\nplot: {arguments.plot}\n")
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
