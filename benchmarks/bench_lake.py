"""Many writers: aggregate ingest throughput of 1 file on 1 CPU and of 2 files at once on 2 CPUs,
into the store under each catalog (a local SQLite file, Postgres), in the same run and
interleaved (each case ``--repeats`` times, in turn); everything the store wrote (data and
catalog) against the BAMs' bytes; CPU seconds and peak RSS per writer; and the catalog's commit
time as writers are added.

Every writer is a ``bam-assets ingest FILE`` process; all of them are started at once, pinned to
the same CPUs (``sched_setaffinity``), with one Dagster instance on Postgres whose pools
``deploy/pools.sh`` set (``lake_writer`` 4). Aggregate reads/s is all reads over the wall time
from the first start to the last exit. The Postgres server is a throw-away cluster (Debian's
``postgresql``), as in the tests. The baseline of the target is one file on one CPU into the same
catalog. The machine's load average is recorded before each case.

The commit probe: K processes (1, 4, 16) each write partitions of 100 reads through the store for
20 s, new ones (a lab's new files: no conflicts) or their own again (re-ingests: each one's
DELETE conflicts with the others' inserts, and retries). Each write is one catalog transaction (a
DELETE, a registered file, the side and files rows) and staging 100 reads costs next to nothing,
so writes per second over all of them is what one catalog sustains, and the latency at K writers
is what each waits.

    python benchmarks/bench_lake.py                  # 2 BAMs of 0.5M reads (generated once)
    python benchmarks/bench_lake.py --reads 1000000 --repeats 3
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(PROJECT))
sys.path.insert(0, str(HERE))

from bench_ingest import machine, synthetic_bam  # noqa: E402

from bam_assets_tests.postgres import SUPERUSER, PostgresCluster  # noqa: E402

# (files at once, CPUs): the baseline, then the target's case.
CASES = ((1, 1), (2, 2))
CATALOGS = ("local", "postgres")


def bam_assets() -> str:
    return str(Path(sys.executable).parent / "bam-assets")


def run_at_once(commands: list[list[str]], cpus: int, env: dict[str, str]) -> dict:
    """Starts ``commands`` together on CPUs 0..cpus-1; wall time to the last exit, and each
    process's CPU seconds and peak RSS."""
    cpu_set = set(range(cpus))
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            preexec_fn=lambda: os.sched_setaffinity(0, cpu_set),
        )
        for command in commands
    ]
    usages = {}
    while len(usages) < len(processes):
        pid, status, usage = os.wait4(-1, 0)
        usages[pid] = (os.waitstatus_to_exitcode(status), usage)
    seconds = time.perf_counter() - started
    reads = 0
    for process in processes:
        code, _ = usages[process.pid]
        stdout, stderr = process.communicate()
        if code != 0:
            raise RuntimeError(f"{process.args} failed ({code}): {stderr.decode()[-2000:]}")
        reads += sum(int(line.split("\t")[1].split()[0]) for line in stdout.decode().splitlines())
    return {
        "seconds": seconds,
        "reads": reads,
        "cpu_seconds": [u.ru_utime + u.ru_stime for _, u in usages.values()],
        "peak_rss_mb": [u.ru_maxrss / 1024 for _, u in usages.values()],
    }


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def commit_worker(key: str, seconds: float, new_keys: bool) -> None:
    """One process of the commit probe: writes partition ``key`` (100 reads) again and again
    until ``seconds`` are over, or with ``new_keys`` a new partition each time (``key-N``, as a
    lab's new files arrive); prints each write's duration."""
    from bam_assets.model.source_stream import source_of
    from bam_assets.orchestration.resources import StoreResource
    from bam_assets.orchestration.settings import store_settings
    from bam_assets.reading.options import ReaderOptions
    from bam_assets.reading.stream import open_reads_stream
    from bam_assets.stats.cycle_quality import CycleQuality

    bam = Path(os.environ["BENCH_SMALL_BAM"])
    store = StoreResource(
        settings=store_settings(os.environ["BAM_ASSETS_STORE"], os.environ["BAM_ASSETS_DB"])
    )
    durations = []
    with store.session() as session:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            partition = f"{key}-{len(durations)}" if new_keys else key
            stream = open_reads_stream(bam, partition, ReaderOptions(), read_ahead=False)
            started = time.monotonic()
            session.replace_partition(source_of(stream), stream, side_tables=[CycleQuality()])
            durations.append(time.monotonic() - started)
    sys.stdout.write(json.dumps(durations))


def commit_probe(env: dict[str, str], writers: int, seconds: float, new_keys: bool) -> dict:
    mode = "new" if new_keys else "same"
    commands = [
        [sys.executable, __file__, "commit-worker", f"{mode}{i}.bam", str(seconds), mode]
        for i in range(writers)
    ]
    processes = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        for command in commands
    ]
    durations = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=seconds + 300)
        if process.returncode != 0:
            raise RuntimeError(stderr.decode()[-2000:])
        durations += json.loads(stdout)
    durations.sort()
    return {
        "catalog": env["BAM_ASSETS_STORE"],
        "partitions": "new" if new_keys else "re-ingested",
        "writers": writers,
        "commits": len(durations),
        "commits_per_second": len(durations) / seconds,
        "median_seconds": durations[len(durations) // 2],
        "p90_seconds": durations[int(len(durations) * 0.9)],
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "commit-worker":
        commit_worker(sys.argv[2], float(sys.argv[3]), sys.argv[4] == "new")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reads", type=int, default=500_000, help="reads per file")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each case, interleaved")
    parser.add_argument("--probe-seconds", type=float, default=10)
    parser.add_argument("--json", type=Path, default=OUT / "lake_benchmark.json")
    arguments = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    bams = [synthetic_bam(arguments.reads, seed=7 + i, read_length=150) for i in range(2)]
    bam_mb = [bam.stat().st_size / 1e6 for bam in bams]
    results: dict = {"machine": machine(), "reads_per_file": arguments.reads, "runs": []}
    with PostgresCluster() as postgres, tempfile.TemporaryDirectory(dir=OUT) as scratch:
        root = Path(scratch)
        postgres.create_database("dagster")
        home = root / "dagster_home"
        home.mkdir()
        shutil.copy(PROJECT / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {
            **os.environ,
            **postgres.env(),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_HOST": postgres.host,
            "DAGSTER_PG_PORT": str(postgres.port),
            "DAGSTER_PG_USERNAME": SUPERUSER,
            "DAGSTER_PG_PASSWORD": postgres.password,
            "DAGSTER_PG_DB": "dagster",
        }
        subprocess.run(["sh", str(PROJECT / "deploy" / "pools.sh")], env=env, check=True)
        order = [
            (catalog, files, cpus)
            for _ in range(arguments.repeats)
            for catalog in CATALOGS
            for files, cpus in CASES
        ]
        for catalog, files, cpus in order:
            case_env, stored_bytes = new_store(postgres, root, env, catalog)
            load = os.getloadavg()[0]
            commands = [[bam_assets(), "ingest", str(bam)] for bam in bams[:files]]
            measured = run_at_once(commands, cpus, case_env)
            measured |= {
                "catalog": catalog,
                "files": files,
                "cpus": cpus,
                "load": load,
                "reads_per_second": measured["reads"] / measured["seconds"],
                "stored_mb": stored_bytes() / 1e6,
                "bam_mb": sum(bam_mb[:files]),
            }
            results["runs"].append(measured)
            sys.stderr.write(
                f"{catalog:8} {files} file(s) {cpus} CPU(s), load {load:.1f}: "
                f"{measured['seconds']:6.1f} s {measured['reads_per_second'] / 1000:6.0f}k "
                f"reads/s, CPU {sum(measured['cpu_seconds']):.1f} s, stored "
                f"{measured['stored_mb'] / measured['bam_mb']:.2f}x the BAMs, peak RSS "
                f"{max(measured['peak_rss_mb']):.0f} MB\n"
            )
        small = root / "small.bam"
        from bam_assets.reading.synthetic_bam import write_synthetic_bam

        write_synthetic_bam(small, 100, seed=3)
        results["commits"] = []
        for catalog in CATALOGS:
            probe_env, _ = new_store(postgres, root, env, catalog)
            probe_env["BENCH_SMALL_BAM"] = str(small)
            for new_keys in (True, False):
                for writers in (1, 4, 16):
                    probe = commit_probe(probe_env, writers, arguments.probe_seconds, new_keys)
                    results["commits"].append(probe)
                    sys.stderr.write(f"commit probe: {json.dumps(probe)}\n")
    arguments.json.write_text(json.dumps(results, indent=1))
    sys.stdout.write(report(results))


def new_store(postgres: PostgresCluster, root: Path, env: dict[str, str], catalog: str):
    """The environment of a new, empty store under ``catalog``, and a function that counts what
    it stored: its files (data, and a local catalog with its WAL) and a Postgres catalog's
    database."""
    name = f"{catalog}_{uuid.uuid4().hex[:8]}"
    folder = root / name
    folder.mkdir()
    case_env = {**env, "BAM_ASSETS_STORE": catalog, "BAM_ASSETS_DB": str(folder / "s.sqlite")}
    if catalog == "local":
        return case_env, lambda: folder_bytes(folder)
    dsn = postgres.create_database(name)
    case_env |= {"BAM_ASSETS_LAKE_CATALOG": dsn, "BAM_ASSETS_LAKE_DATA_PATH": str(folder)}

    def stored() -> int:
        size = postgres.psql(f"SELECT pg_database_size('{name}')").strip()
        return folder_bytes(folder) + int(size)

    return case_env, stored


def report(results: dict) -> str:
    runs = results["runs"]
    lines = [
        f"Machine: {results['machine']}; {results['reads_per_file']:,} reads per file\n",
        "| catalog | files at once | CPUs | load | wall s | CPU s | reads/s | vs 1 file on 1 CPU "
        "| stored / BAM bytes | peak RSS per writer MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for index, r in enumerate(runs):
        base = next(
            b
            for b in reversed(runs[: index + 1])
            if b["catalog"] == r["catalog"] and b["cpus"] == 1
        )
        lines.append(
            f"| {r['catalog']} | {r['files']} | {r['cpus']} | {r['load']:.1f} | "
            f"{r['seconds']:.1f} | {sum(r['cpu_seconds']):.1f} | "
            f"{r['reads_per_second'] / 1000:,.0f}k | "
            f"{r['reads_per_second'] / base['reads_per_second']:.2f}x | "
            f"{r['stored_mb'] / r['bam_mb']:.2f} | {max(r['peak_rss_mb']):.0f} |"
        )
    lines += [
        "",
        "| catalog | partitions | writers | commits | per second | median s | p90 s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c in results["commits"]:
        lines.append(
            f"| {c['catalog']} | {c['partitions']} | {c['writers']} | {c['commits']} | "
            f"{c['commits_per_second']:.1f} | "
            f"{c['median_seconds']:.3f} | {c['p90_seconds']:.3f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
