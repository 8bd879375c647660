"""Ingest benchmark: `bam-assets ingest` beside oxbow, polars-bio, pysam into DuckDB and samtools.

Every workload runs as its own subprocess pinned with ``sched_setaffinity`` to CPUs 0..N-1, one
workload after another at each size (so neighbours' load spreads over all of them), and the
harness records, from outside the process:

- wall time (the whole process: interpreter, imports, Dagster's start-up for the ingest),
- CPU seconds (user + system of the child: steadier than wall time on a shared machine),
- peak RSS (``ru_maxrss`` of the child, from ``os.wait4``),
- for the DuckDB workloads, the database file's size after the run (checkpointed) / BAM size,
  and how many of the BAM's optional fields (tags) the table kept.

Workloads (``--workloads``; the DuckDB peers get what the ingest gives itself: DuckDB ``threads``
= the CPUs given, ``memory_limit`` = the ingest's 64MB, the batch size of the sweep in
RESULTS.md):

  ingest      bam-assets ingest BAM --db fresh.duckdb (one warmed Dagster home for the run)
  oxbow       oxbow 0.8.2: from_bam(batch_size=B).with_tags().to_duckdb(conn), CREATE TABLE
  polars-bio  polars-bio 0.36.2: scan_bam(tag_fields=[every tag in the file]) streamed by
              collect_batches into DuckDB; runs in benchmarks/out/venv-polars-bio, which the
              harness creates on first use (pip: polars-bio==0.36.2, pyarrow<25, this duckdb)
  pysam       a plain pysam loop: AlignedSegment fields into Arrow batches, DuckDB INSERT from a
              RecordBatchReader
  samtools    samtools view -c -@ N-1 through pysam (the decode floor; stores nothing)

A peer that fails at the ingest's memory_limit is rerun at twice the limit until it completes
(the table labels the limit it needed). The synthetic BAMs (``bam_assets.synthetic_bam``: paired
150-bp reads, seed 7, tags NM AS XS RG XA XF ZB) are generated once and cached in
``benchmarks/out/`` with a count of their tags.

The table shows the best (fastest) of ``--repeats`` runs, its peak RSS the highest of all, and on
each ingest row the fastest DuckDB peer's time / the ingest's time and the ingest's time /
samtools' time. Raw runs go to ``--json``; the plot (throughput, peak RSS, stored/BAM against
file size) to ``--plot``.

Setup, from a fresh clone:

    make setup && .venv/bin/pip install -e '.[bench]'     # or: pip install -e '.[bench]'

Runs:

    python benchmarks/bench_ingest.py                            # 0.3M, 1M, 2.9M reads; 1, 2 CPUs
    python benchmarks/bench_ingest.py --sizes 300000 --cpus 1   # a quick check (about a minute)
    python benchmarks/bench_ingest.py --sizes 2900000 --repeats 3
    python benchmarks/bench_ingest.py --sweep 8192,16384,32768,65536,131072 --sizes 1000000
                                       # batch sizes of the DuckDB peers (how the defaults were set)
    python benchmarks/bench_ingest.py --batch-size oxbow=131072 --memory-limit 256MB

Generating a BAM takes about 7 s per 100,000 reads the first time on a quiet machine (2.9M
reads: ~3.5 minutes; 10M: ~12), two to three times that on a loaded one.
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
WORKLOADS_SCRIPT = HERE / "workloads.py"
WORKLOADS = ("ingest", "oxbow", "polars-bio", "pysam", "samtools")
DUCKDB_PEERS = ("oxbow", "polars-bio", "pysam")
# The ingest's DuckDB memory_limit (bam_assets: IngestSettings.memory_limit and the IO manager's
# default, "64MB"); every DuckDB peer gets the same unless it cannot finish with it.
INGEST_MEMORY_LIMIT = "64MB"
# Records per batch for each DuckDB peer and CPU count: the least CPU time in the sweep of
# RESULTS.md (--sweep, 1M reads); more CPUs than listed use the largest listed. The ingest's own
# batches are 10,000 records (bam_assets' chunk_size).
BATCH_SIZES = {
    "oxbow": {1: 32768, 2: 8192},
    "polars-bio": {1: 8192, 2: 8192},
    "pysam": {1: 8192, 2: 8192},
}
# polars-bio's virtualenv: 0.36.2 needs pyarrow<25 and the project pins pyarrow 26.
POLARS_BIO_VENV = OUT / "venv-polars-bio"
POLARS_BIO_REQUIREMENTS = ["polars-bio==0.36.2", "pyarrow<25"]
LARGEST_MEMORY_LIMIT_MB = 16384


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
    batch_size: int = 0
    memory_limit: str = ""
    memory_limit_failed: str = ""  # the limits it could not finish with, e.g. "64MB,128MB"
    stored_mb: float = 0.0
    tags_stored: int = -1  # optional fields the table holds (-1: stores none / not checked)
    tags_in_bam: int = -1

    @property
    def reads_per_second(self) -> float:
        return self.records / self.seconds

    @property
    def stored_ratio(self) -> float:
        return self.stored_mb / self.size_mb if self.stored_mb else 0.0


# --- the input ----------------------------------------------------------------------------------


def _write_synthetic_bam():
    """``write_synthetic_bam`` wherever the package keeps it (imported only when generating; the
    flat layout before the layers too, for A/B runs against older commits)."""
    try:
        from bam_assets.reading.synthetic_bam import write_synthetic_bam
    except ImportError:
        from bam_assets.synthetic_bam import write_synthetic_bam
    return write_synthetic_bam


def synthetic_bam(reads: int, seed: int, read_length: int) -> Path:
    """The cached BAM for ``reads``/``seed``/``read_length``, generated on first use."""
    path = OUT / f"synthetic_{reads}_seed{seed}_{read_length}bp.bam"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.stem + ".partial.bam")
        sys.stderr.write(f"generating {path.name} ...\n")
        _write_synthetic_bam()(partial, reads, seed=seed, read_length=read_length)
        partial.rename(path)
    return path


def bam_tags(bam: Path) -> dict[str, int]:
    """How many records carry each tag, over the whole file (pysam; cached beside the BAM).

    polars-bio parses only the tags it is named, so it is given all of them; the counts check
    that every DuckDB table kept every tag.
    """
    cache = bam.with_name(bam.name + ".tags.json")
    if cache.exists() and cache.stat().st_mtime >= bam.stat().st_mtime:
        return json.loads(cache.read_text())
    import pysam

    counts: dict[str, int] = {}
    with pysam.AlignmentFile(str(bam), "rb") as alignments:
        for segment in alignments:
            for tag, _ in segment.get_tags():
                counts[tag] = counts.get(tag, 0) + 1
    cache.write_text(json.dumps(counts))
    return counts


# --- the peers' environments ----------------------------------------------------------------------


def polars_bio_python() -> str:
    """The polars-bio virtualenv's interpreter, created (and installed from PyPI) on first use.

    It gets the harness's DuckDB version, so that the harness can open what it wrote.
    """
    from importlib.metadata import version

    requirements = [*POLARS_BIO_REQUIREMENTS, f"duckdb=={version('duckdb')}"]
    python = POLARS_BIO_VENV / "bin" / "python"
    stamp = POLARS_BIO_VENV / "requirements.txt"
    if stamp.exists() and stamp.read_text().split("\n") == requirements:
        return str(python)
    sys.stderr.write(f"creating {POLARS_BIO_VENV} ({' '.join(requirements)}) ...\n")
    shutil.rmtree(POLARS_BIO_VENV, ignore_errors=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    subprocess.run([base, "-m", "venv", str(POLARS_BIO_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, *requirements], check=True)
    stamp.write_text("\n".join(requirements))
    return str(python)


def _bam_assets() -> str:
    found = shutil.which("bam-assets", path=str(Path(sys.executable).parent))
    return found or shutil.which("bam-assets") or "bam-assets"


# --- running ------------------------------------------------------------------------------------


class WorkloadFailed(RuntimeError):
    def __init__(self, command: list[str], returncode: int, stderr: str):
        super().__init__(f"{' '.join(command)} failed ({returncode}):\n{stderr}")
        self.stderr = stderr


def run_pinned(
    command: list[str], cpus: int, env: dict[str, str]
) -> tuple[float, float, float, str]:
    """Runs ``command`` on CPUs 0..cpus-1; returns wall and CPU seconds, peak RSS (MB), stdout."""
    cpu_set = set(range(cpus))
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=stdout,
            stderr=stderr,
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, cpu_set),
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        returncode = os.waitstatus_to_exitcode(status)
        process.returncode = returncode
        stdout.seek(0)
        stderr.seek(0)
        output = stdout.read().decode()
        errors = stderr.read().decode(errors="replace")
    if returncode != 0:
        raise WorkloadFailed(command, returncode, errors[-4000:])
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, output


def warm_dagster_home(home: Path) -> None:
    """Creates the Dagster instance's storage once (schema migrations are a one-time cost)."""
    example = OUT / "warm.sam"
    if not example.exists():
        example.write_text(
            "@HD\tVN:1.6\tSO:unsorted\nr1\t4\t*\t0\t0\t*\t*\t0\t0\tACGT\tIIII\tRG:Z:a\n"
        )
    with tempfile.TemporaryDirectory(dir=OUT) as folder:
        env = {**os.environ, "DAGSTER_HOME": str(home)}
        run_pinned([_bam_assets(), "ingest", str(example), "--db", f"{folder}/warm.duckdb"], 1, env)


def _is_out_of_memory(error: WorkloadFailed) -> bool:
    text = error.stderr.lower()
    return "out of memory" in text or "memory_limit" in text or "outofmemory" in text


def _double(limit: str) -> str:
    return f"{_megabytes(limit) * 2}MB"


def _megabytes(limit: str) -> int:
    number = limit.upper().removesuffix("B")
    scale = {"K": 1 / 1024, "M": 1, "G": 1024}.get(number[-1:], None)
    if scale is None:
        return int(int(number) / 2**20)
    return int(float(number[:-1]) * scale)


def _command(
    workload: str,
    bam: Path,
    database: str,
    cpus: int,
    memory_limit: str,
    batch_size: int,
    tags: list[str],
) -> list[str]:
    if workload == "ingest":
        return [_bam_assets(), "ingest", str(bam), "--db", database]
    if workload == "samtools":
        return [
            sys.executable,
            str(WORKLOADS_SCRIPT),
            "samtools-count",
            str(bam),
            "--threads",
            str(cpus),
        ]
    python = polars_bio_python() if workload == "polars-bio" else sys.executable
    command = [
        python,
        str(WORKLOADS_SCRIPT),
        f"{workload}-duckdb",
        str(bam),
        database,
        "--threads",
        str(cpus),
        "--memory-limit",
        memory_limit,
        "--batch-size",
        str(batch_size),
    ]
    if workload == "polars-bio":
        command += ["--tags", ",".join(tags)]
    return command


def measure(
    workload: str,
    bam: Path,
    cpus: int,
    target_reads: int,
    dagster_home: Path,
    batch_size: int = 0,
    memory_limit: str = INGEST_MEMORY_LIMIT,
) -> Measurement:
    """One run of ``workload``; a DuckDB peer that runs out of memory is rerun at twice the
    limit (the failed limits are kept in the measurement)."""
    tags = bam_tags(bam) if workload in DUCKDB_PEERS or workload == "ingest" else {}
    failed: list[str] = []
    while True:
        with tempfile.TemporaryDirectory(dir=OUT) as folder:
            database = str(Path(folder) / "bench.duckdb")
            env = {**os.environ, "DAGSTER_HOME": str(dagster_home)}
            command = _command(
                workload, bam, database, cpus, memory_limit, batch_size, sorted(tags)
            )
            try:
                seconds, cpu_seconds, peak, output = run_pinned(command, cpus, env)
            except WorkloadFailed as error:
                if workload not in DUCKDB_PEERS or not _is_out_of_memory(error):
                    raise
                if _megabytes(memory_limit) >= LARGEST_MEMORY_LIMIT_MB:
                    raise
                sys.stderr.write(f"{workload}: out of memory at memory_limit {memory_limit}\n")
                failed.append(memory_limit)
                memory_limit = _double(memory_limit)
                continue
            if workload == "ingest":
                records = int(output.split("\t")[1].split()[0])
            else:
                records = int(output)
            result = Measurement(
                workload,
                cpus,
                target_reads,
                records,
                bam.stat().st_size / 1e6,
                seconds,
                cpu_seconds,
                peak,
                batch_size,
                memory_limit if workload in DUCKDB_PEERS else "",
                ",".join(failed),
            )
            if workload in DUCKDB_PEERS or workload == "ingest":
                result.stored_mb, result.tags_stored = _stored(workload, database, sorted(tags))
                result.tags_in_bam = sum(tags.values())
            return result


def _stored(workload: str, database: str, tags: list[str]) -> tuple[float, int]:
    """The database's size once checkpointed (MB) and the number of tag values its ``reads``
    table holds, counted the way each workload stores them."""
    import duckdb

    connection = duckdb.connect(database)
    try:
        connection.execute("CHECKPOINT")
        if workload in ("ingest", "pysam"):  # SAM text, tab-separated
            query = (
                "SELECT coalesce(sum(CASE WHEN tags = '' THEN 0 "
                "ELSE len(string_split(tags, chr(9))) END), 0) FROM reads"
            )
        elif workload == "oxbow":  # one STRUCT column, a field per discovered tag
            fields = [
                d[0]
                for d in connection.execute("SELECT unnest(tags) FROM reads LIMIT 0").description
            ]
            query = (
                "SELECT " + " + ".join(f'count(tags."{field}")' for field in fields) + " FROM reads"
                if fields
                else ("SELECT 0")
            )
        else:  # polars-bio: a column per named tag
            columns = {row[0] for row in connection.execute("DESCRIBE reads").fetchall()}
            counted = [f'count("{tag}")' for tag in tags if tag in columns]
            query = "SELECT " + (" + ".join(counted) or "0") + " FROM reads"
        tags_stored = int(connection.execute(query).fetchone()[0])
    finally:
        connection.close()
    size = Path(database).stat().st_size
    wal = Path(database + ".wal")
    if wal.exists():
        size += wal.stat().st_size
    return size / 1e6, tags_stored


# --- reporting ----------------------------------------------------------------------------------


def best(results: list[Measurement]) -> dict[tuple, Measurement]:
    """The fastest run of each (workload, cpus, size, batch size); its peak RSS is the highest
    seen over all its runs."""
    chosen: dict[tuple, Measurement] = {}
    for result in results:
        key = (result.workload, result.cpus, result.target_reads, result.batch_size)
        if key not in chosen:
            chosen[key] = Measurement(**asdict(result))
            continue
        kept = chosen[key]
        kept.peak_rss_mb = max(kept.peak_rss_mb, result.peak_rss_mb)
        if result.seconds < kept.seconds:
            kept.seconds, kept.cpu_seconds = result.seconds, result.cpu_seconds
    return chosen


def _by_workload(results: list[Measurement]) -> dict[tuple[str, int, int], Measurement]:
    return {(w, c, s): m for (w, c, s, _), m in best(results).items()}


def _label(result: Measurement) -> str:
    if not result.memory_limit_failed:
        return result.workload
    return (
        f"{result.workload} (**memory_limit {result.memory_limit}**: "
        f"{result.memory_limit_failed} failed)"
    )


def _tags_note(result: Measurement) -> str:
    if result.tags_stored < 0:
        return ""
    if result.tags_stored == result.tags_in_bam:
        return "all"
    return f"{result.tags_stored:,} of {result.tags_in_bam:,}"


def table(results: list[Measurement], sizes: list[int], cpu_counts: list[int]) -> str:
    chosen = _by_workload(results)
    lines = [
        "| reads | CPUs | workload | wall s | CPU s | reads/s | peak RSS MB | stored/BAM "
        "| tags kept | best peer time / ingest time (wall, CPU) | ingest time / samtools time |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for size in sizes:
        for cpus in cpu_counts:
            peers = [chosen[(p, cpus, size)] for p in DUCKDB_PEERS if (p, cpus, size) in chosen]
            fastest = min(peers, key=lambda m: m.seconds) if peers else None
            samtools = chosen.get(("samtools", cpus, size))
            for workload in WORKLOADS:
                result = chosen.get((workload, cpus, size))
                if result is None:
                    continue
                against_peer = against_samtools = ""
                if workload == "ingest" and fastest is not None:
                    against_peer = (
                        f"**{fastest.seconds / result.seconds:.2f}x**, "
                        f"{fastest.cpu_seconds / result.cpu_seconds:.2f}x ({fastest.workload})"
                    )
                if workload == "ingest" and samtools is not None:
                    against_samtools = f"{result.seconds / samtools.seconds:.2f}x"
                stored = f"{result.stored_ratio:.2f}" if result.stored_mb else ""
                lines.append(
                    f"| {result.records:,} | {cpus} | {_label(result)} | {result.seconds:.2f} | "
                    f"{result.cpu_seconds:.2f} | {result.reads_per_second / 1000:,.0f}k | "
                    f"{result.peak_rss_mb:.0f} | {stored} | {_tags_note(result)} | "
                    f"{against_peer} | {against_samtools} |"
                )
    return "\n".join(lines)


def settings(results: list[Measurement]) -> str:
    """Each workload's settings as run, one line each."""
    seen: dict[str, set[str]] = {}
    for result in results:
        if result.workload == "ingest":
            text = (
                "bam-assets ingest: DuckDB threads=1 and memory_limit=64MB (its defaults), "
                "10,000-record batches, one BGZF inflate thread with a second CPU"
            )
        elif result.workload == "samtools":
            text = f"samtools view -c -@ {result.cpus - 1} with {result.cpus} CPU(s)"
        else:
            text = (
                f"DuckDB threads={result.cpus} (= CPUs), memory_limit={result.memory_limit}, "
                f"batch_size={result.batch_size:,}"
            )
        seen.setdefault(result.workload, set()).add(text)
    return "\n".join(
        f"- {workload}: {'; '.join(sorted(seen[workload]))}"
        for workload in WORKLOADS
        if workload in seen
    )


def sweep_table(results: list[Measurement]) -> str:
    chosen = best(results)
    lines = [
        "| peer | reads | CPUs | batch size | wall s | CPU s | peak RSS MB | stored/BAM |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key in sorted(chosen, key=lambda k: (k[0], k[2], k[1], k[3])):
        m = chosen[key]
        lines.append(
            f"| {_label(m)} | {m.records:,} | {m.cpus} | {m.batch_size:,} | {m.seconds:.2f} | "
            f"{m.cpu_seconds:.2f} | {m.peak_rss_mb:.0f} | {m.stored_ratio:.2f} |"
        )
    return "\n".join(lines)


def plot(results: list[Measurement], cpu_counts: list[int], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = _by_workload(results)
    figure, (speed, memory, stored) = plt.subplots(1, 3, figsize=(15, 4.4))
    colours = {"ingest": "C0", "oxbow": "C3", "polars-bio": "C2", "pysam": "C1", "samtools": "C7"}
    for workload in WORKLOADS:
        for cpus in cpu_counts:
            points = sorted(
                (m.records, m) for (w, c, _), m in chosen.items() if w == workload and c == cpus
            )
            if not points:
                continue
            xs = [records / 1e6 for records, _ in points]
            style = {
                "linestyle": "-" if cpus == 1 else "--",
                "marker": "o" if cpus == 1 else "s",
                "color": colours[workload],
                "label": f"{'bam-assets ingest' if workload == 'ingest' else workload}, {cpus} CPU",
            }
            speed.plot(xs, [m.reads_per_second / 1000 for _, m in points], **style)
            if workload != "samtools":
                memory.plot(xs, [m.peak_rss_mb for _, m in points], **style)
                stored.plot(xs, [m.stored_ratio for _, m in points], **style)
    speed.set(
        xlabel="reads (millions)", ylabel="thousand reads/s", title="Throughput (whole process)"
    )
    memory.set(xlabel="reads (millions)", ylabel="MB", title="Peak RSS")
    stored.set(
        xlabel="reads (millions)", ylabel="DuckDB file / BAM", title="Stored size / BAM size"
    )
    sizes = sorted({m.records / 1e6 for m in chosen.values()})
    for axes in (speed, memory, stored):
        axes.set_xscale("log")
        axes.set_ylim(bottom=0)
        axes.set_xticks(sizes, [f"{size:.2g}" for size in sizes])
        axes.minorticks_off()
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(title, fontsize=9)
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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {memory:.0f} GiB, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}; load average {load:.1f} "
        "when the table was printed"
    )


def batch_size(peer: str, cpus: int, overrides: dict[str, int]) -> int:
    """The peer's batch size with ``cpus`` CPUs: ``--batch-size`` if given, else the sweep's."""
    if peer not in DUCKDB_PEERS:
        return 0
    if peer in overrides:
        return overrides[peer]
    chosen = BATCH_SIZES[peer]
    return chosen[max((c for c in chosen if c <= cpus), default=min(chosen))]


def _batch_sizes(text: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in filter(None, text.split(",")):
        peer, _, value = item.partition("=")
        if peer not in DUCKDB_PEERS:
            raise SystemExit(f"--batch-size: {peer!r} is not one of {', '.join(DUCKDB_PEERS)}")
        sizes[peer] = int(value)
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="300000,1000000,2900000",
        help="comma-separated read counts (default: %(default)s)",
    )
    parser.add_argument("--cpus", default="1,2", help="CPU counts to pin to (default: %(default)s)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS), help="subset of (default) %(default)s"
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs of each (the best is shown)")
    parser.add_argument(
        "--batch-size",
        default="",
        help="PEER=N,... records per batch for the DuckDB peers (default, by CPUs given: "
        + "; ".join(
            f"{p} " + ", ".join(f"{n} with {c}" for c, n in sizes.items())
            for p, sizes in BATCH_SIZES.items()
        )
        + ")",
    )
    parser.add_argument(
        "--memory-limit",
        default=INGEST_MEMORY_LIMIT,
        help="DuckDB memory_limit the peers start from (default: the ingest's, %(default)s)",
    )
    parser.add_argument(
        "--sweep",
        default="",
        help="comma-separated batch sizes: run only the DuckDB peers at each and print that table",
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--read-length", type=int, default=150)
    parser.add_argument(
        "--plot",
        default=str(HERE / "ingest_benchmark.png"),
        help="PNG to write (default: %(default)s); '' for none",
    )
    parser.add_argument("--json", type=Path, default=OUT / "ingest_benchmark.json")
    arguments = parser.parse_args()
    sizes = [int(size) for size in arguments.sizes.split(",")]
    cpu_counts = [int(cpus) for cpus in arguments.cpus.split(",")]
    workloads = [w for w in arguments.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads {sorted(unknown)}: choose from {WORKLOADS}")
    batch_sizes = _batch_sizes(arguments.batch_size)
    sweep = [int(size) for size in arguments.sweep.split(",") if size]
    if sweep:
        workloads = [w for w in workloads if w in DUCKDB_PEERS]
    if max(cpu_counts) > len(os.sched_getaffinity(0)):
        raise SystemExit(
            f"--cpus {max(cpu_counts)}: this process may use only "
            f"{len(os.sched_getaffinity(0))} CPUs"
        )
    OUT.mkdir(parents=True, exist_ok=True)
    if "polars-bio" in workloads:
        polars_bio_python()
    results: list[Measurement] = []
    home = Path(tempfile.mkdtemp(dir=OUT, prefix="dagster_home_"))
    try:
        if "ingest" in workloads:
            warm_dagster_home(home)
        for size in sizes:
            bam = synthetic_bam(size, arguments.seed, arguments.read_length)
            bam_tags(bam)
            for _ in range(arguments.repeats):
                for cpus in cpu_counts:
                    runs = (
                        [(w, b) for w in workloads for b in sweep]
                        if sweep
                        else [(w, batch_size(w, cpus, batch_sizes)) for w in workloads]
                    )
                    for workload, batch in runs:
                        result = measure(
                            workload, bam, cpus, size, home, batch, arguments.memory_limit
                        )
                        sys.stderr.write(
                            f"{workload:10} {cpus} CPU {result.records:>10,} reads "
                            f"{'batch ' + format(batch, ',') if batch else '':13} "
                            f"{result.seconds:7.2f} s {result.cpu_seconds:7.2f} CPU s "
                            f"{result.peak_rss_mb:6.0f} MB"
                            f"{f' stored {result.stored_ratio:.2f}x' if result.stored_mb else ''}"
                            "\n"
                        )
                        results.append(result)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    arguments.json.parent.mkdir(parents=True, exist_ok=True)
    arguments.json.write_text(json.dumps([asdict(r) for r in results], indent=1))
    out = sys.stdout
    out.write(f"Machine: {machine()}\n\n")
    if sweep:
        out.write(sweep_table(results) + "\n")
        return
    bams = ", ".join(
        f"{size:,} reads: "
        f"{synthetic_bam(size, arguments.seed, arguments.read_length).stat().st_size / 1e6:.0f} MB"
        for size in sizes
    )
    out.write(f"Synthetic BAMs (seed {arguments.seed}, {arguments.read_length} bp): {bams}\n\n")
    out.write(table(results, sizes, cpu_counts) + "\n\nSettings:\n" + settings(results) + "\n")
    if arguments.plot:
        plot(results, cpu_counts, Path(arguments.plot), f"Machine: {machine()}")
        out.write(f"\nplot: {arguments.plot}\n")


if __name__ == "__main__":
    main()
