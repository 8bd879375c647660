"""Dagster definitions of the read statistics: per-file summary assets, checks, the overview.

Per-file assets share the ``reads`` asset's dynamic partitions and run SQL in DuckDB through
``read_stats_sql``; no read ever reaches Python. The cross-file ``read_stats_overview`` is
unpartitioned and refreshed by a schedule (``summary_cron``, daily by default).

Why a schedule by default rather than declarative automation: ``AutomationCondition.on_cron``
waits until every upstream partition has been updated since the tick, and with one dynamic
partition per file that may never happen, so the overview would never refresh. The schedule runs
whatever partitions exist. ``summary_automation=True`` switches the overview to
``cron_tick_passed(...) & ~in_progress()`` (no upstream wait), for deployments that run the
automation sensor instead of the schedule daemon.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from bam_assets import read_stats_sql as sql
from bam_assets.alignment_reader import count_records
from bam_assets.available_cpus import available_cpus
from bam_assets.duckdb_store import StoreConfig
from bam_assets.ingest_settings import DUCKDB_WRITER_POOL, IngestSettings
from bam_assets.resources import AlignmentSources
from bam_assets.samtools_text import flagstat_percent, sn_values

GROUP = "read_stats"


def duckdb_resource_key(settings: IngestSettings) -> str:
    return f"{settings.prefix}duckdb"


def store_config(settings: IngestSettings) -> StoreConfig:
    """Table names as the ``reads`` IO manager writes them."""
    manager = settings.io_manager()
    return StoreConfig(
        database=settings.database,
        reads_table=manager.reads_table,
        files_table=manager.files_table,
    )


def duckdb_resource(settings: IngestSettings) -> DuckDBResource:
    connection_config: dict[str, object] = {}
    # Statistics queries parallelise well: all CPUs this process may use (``threads`` in the
    # settings is the ingest's, where one thread is fastest).
    connection_config["threads"] = available_cpus()
    if settings.memory_limit:
        connection_config["memory_limit"] = settings.memory_limit
    return DuckDBResource(database=settings.database, connection_config=connection_config)


def _asset_key(settings: IngestSettings, name: str) -> dg.AssetKey:
    return dg.AssetKey([settings.name, name] if settings.name else [name])


# ---------------------------------------------------------------------------------------------
# Markdown for the UI


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def bar_chart(points: Sequence[tuple[object, float]], width: int = 40, bars: int = 30) -> str:
    """A Markdown text bar chart; more than ``bars`` points are merged into equal groups."""
    if not points:
        return "_no data_"
    if len(points) > bars:
        size = -(-len(points) // bars)
        points = [
            (f"{group[0][0]}–{group[-1][0]}", sum(value for _, value in group))
            for group in (points[i : i + size] for i in range(0, len(points), size))
        ]
    peak = max(value for _, value in points) or 1
    label_width = max(len(str(label)) for label, _ in points)
    lines = [
        f"{str(label):>{label_width}} | {'█' * round(width * value / peak):<{width}} {value:,.6g}"
        for label, value in points
    ]
    return "```text\n" + "\n".join(lines) + "\n```"


def flagstat_markdown(stats: sql.Flagstat) -> str:
    totals = {
        "mapped": "total",
        "primary_mapped": "primary",
        "properly_paired": "paired",
        "singletons": "paired",
    }
    rows = []
    for name, passed, failed in stats.rows():
        share = ""
        if name in totals:
            base = getattr(stats, totals[name])
            share = f"{flagstat_percent(passed, base[0])} : {flagstat_percent(failed, base[1])}"
        rows.append((name.replace("_", " "), f"{passed:,}", f"{failed:,}", share))
    return _markdown_table(("category", "QC-passed", "QC-failed", "%"), rows)


# ---------------------------------------------------------------------------------------------
# Assets


@contextmanager
def _connection(
    context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext, key: str
) -> Iterator[duckdb.DuckDBPyConnection]:
    resource: DuckDBResource = getattr(context.resources, key)
    with resource.get_connection() as connection:
        yield connection


def build_summary_assets(settings: IngestSettings) -> list[dg.AssetsDefinition]:
    """``flagstat``, ``idxstats``, ``read_stats`` and ``read_distributions`` per partition."""
    config = store_config(settings)
    db_key = duckdb_resource_key(settings)
    common = {
        "partitions_def": settings.partitions_def(),
        "deps": [settings.asset_key],
        "required_resource_keys": {db_key},
        "kinds": {"duckdb"},
        "group_name": GROUP,
        "pool": DUCKDB_WRITER_POOL,
        "automation_condition": dg.AutomationCondition.eager(),
    }

    def timed(
        context: dg.AssetExecutionContext,
        work: Callable[[duckdb.DuckDBPyConnection, str], dict[str, object]],
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        with _connection(context, db_key) as connection:
            metadata = work(connection, context.partition_key)
        metadata["seconds"] = round(time.monotonic() - started, 3)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(key=_asset_key(settings, "flagstat"), **common)
    def flagstat(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools flagstat of one file, QC-passed and QC-failed, computed in DuckDB."""

        def work(connection: duckdb.DuckDBPyConnection, key: str) -> dict[str, object]:
            stats = sql.flagstat(connection, config, key)
            rows = sql.write_flagstat(connection, config, key, stats)
            return {
                "dagster/row_count": rows,
                "records": stats.total[0] + stats.total[1],
                "flagstat": dg.MetadataValue.md(flagstat_markdown(stats)),
            }

        return timed(context, work)

    @dg.asset(key=_asset_key(settings, "idxstats"), **common)
    def idxstats(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools idxstats of one file: mapped and unmapped records per contig, then '*'."""
        lengths = sql.reference_lengths(settings.reference)

        def work(connection: duckdb.DuckDBPyConnection, key: str) -> dict[str, object]:
            rows = sql.idxstats(connection, config, key, lengths)
            stored = sql.write_idxstats(connection, config, key, rows)
            busy = [r for r in rows if r.mapped or r.unmapped]
            busy.sort(key=lambda r: r.mapped + r.unmapped, reverse=True)
            return {
                "dagster/row_count": stored,
                "contigs": len(rows) - 1,
                "contigs_with_reads": sum(1 for r in rows[:-1] if r.mapped or r.unmapped),
                "top_contigs": dg.MetadataValue.md(
                    _markdown_table(
                        ("contig", "length", "mapped", "unmapped"),
                        [(r.name, r.length, r.mapped, r.unmapped) for r in busy[:20]],
                    )
                ),
            }

        return timed(context, work)

    @dg.asset(key=_asset_key(settings, "read_stats"), **common)
    def read_stats(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools stats summary numbers (SN) of one file that need no reference."""

        def work(connection: duckdb.DuckDBPyConnection, key: str) -> dict[str, object]:
            numbers = sql.summary_numbers(connection, config, key)
            stored = sql.write_summary_numbers(connection, config, key, numbers)
            return {
                "dagster/row_count": stored,
                "sequences": numbers.sequences,
                "reads_mapped": numbers.reads_mapped,
                "summary_numbers": dg.MetadataValue.md(
                    _markdown_table(
                        ("SN", "value"), [(label, value) for label, value, _ in sn_values(numbers)]
                    )
                ),
            }

        return timed(context, work)

    @dg.asset(key=_asset_key(settings, "read_distributions"), **common)
    def read_distributions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """MAPQ, length, insert size, quality per cycle, GC and coverage distributions."""

        def work(connection: duckdb.DuckDBPyConnection, key: str) -> dict[str, object]:
            counts = sql.write_distributions(
                connection, config, key, coverage_window=settings.coverage_window
            )

            def series(name: str, x: int, y: int) -> list[tuple[object, float]]:
                rows = sql.distribution(connection, config, key, name)
                return [(row[x], float(row[y])) for row in rows]

            quality = [
                (f"{row[0][0]}{row[1]}", round(float(row[4]), 1))
                for row in sql.distribution(connection, config, key, "quality_by_cycle")
            ]
            coverage = sorted(
                sql.distribution(connection, config, key, "coverage_contig"),
                key=lambda row: row[4],
                reverse=True,
            )
            return {
                "dagster/row_count": sum(counts.values()),
                **{f"rows_{name}": count for name, count in counts.items()},
                "mapq": dg.MetadataValue.md(bar_chart(series("mapq", 0, 1))),
                "read_length": dg.MetadataValue.md(bar_chart(series("read_length", 0, 1))),
                "insert_size": dg.MetadataValue.md(bar_chart(series("insert_size", 0, 4))),
                "gc_content": dg.MetadataValue.md(bar_chart(series("gc_content", 0, 1))),
                "mean_quality_by_cycle": dg.MetadataValue.md(bar_chart(quality)),
                "coverage_by_contig": dg.MetadataValue.md(
                    _markdown_table(
                        ("contig", "length", "reads", "mean depth", "breadth"),
                        [
                            (row[1], row[2], row[3], f"{row[6]:.3f}", f"{row[7]:.4f}")
                            for row in coverage[:20]
                            if row[3]
                        ],
                    )
                ),
            }

        return timed(context, work)

    return [flagstat, idxstats, read_stats, read_distributions]


OVERVIEW_TOTAL_COLUMNS = range(2, 10)


def build_overview_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    config = store_config(settings)
    db_key = duckdb_resource_key(settings)
    automation = (
        dg.AutomationCondition.cron_tick_passed(settings.summary_cron)
        & ~dg.AutomationCondition.in_progress()
        if settings.summary_automation
        else None
    )

    @dg.asset(
        key=_asset_key(settings, "read_stats_overview"),
        deps=[settings.asset_key],
        required_resource_keys={db_key},
        kinds={"duckdb"},
        group_name=GROUP,
        pool=DUCKDB_WRITER_POOL,
        automation_condition=automation,
    )
    def read_stats_overview(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One row per ingested file with its key read counts, plus totals."""
        started = time.monotonic()
        with _connection(context, db_key) as connection:
            rows = sql.write_overview(connection, config)
        totals = ["**total**", ""] + [sum(row[i] for row in rows) for i in OVERVIEW_TOTAL_COLUMNS]
        totals.append(round(sum(row[10] for row in rows), 3))
        shown = [(*row[:10], round(row[10], 3)) for row in rows]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "files": len(rows),
                "records": int(totals[2]),
                "overview": dg.MetadataValue.md(
                    _markdown_table(sql.OVERVIEW_COLUMNS, [*shown, totals])
                ),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    return read_stats_overview


# ---------------------------------------------------------------------------------------------
# Checks on the reads asset


def build_reads_checks(settings: IngestSettings) -> list[dg.AssetChecksDefinition]:
    config = store_config(settings)
    db_key = duckdb_resource_key(settings)
    sources_key = settings.sources_key

    @dg.asset_check(
        asset=settings.asset_key,
        name="row_count_matches_source",
        partitions_def=settings.partitions_def(),
        required_resource_keys={db_key, sources_key},
    )
    def row_count_matches_source(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """The partition has exactly as many rows as samtools view -c counts in its file."""
        key = context.partition_key
        sources: AlignmentSources = getattr(context.resources, sources_key)
        found = sources.resolve(key)
        expected = count_records(found.path, sources.reader_options())
        with _connection(context, db_key) as connection:
            integrity = sql.partition_integrity(connection, config, key)
        return dg.AssetCheckResult(
            passed=integrity.rows == expected,
            metadata={"rows": integrity.rows, "records_in_file": expected},
        )

    @dg.asset_check(
        asset=settings.asset_key,
        name="rows_unique_and_flagstat_consistent",
        partitions_def=settings.partitions_def(),
        required_resource_keys={db_key},
    )
    def rows_unique_and_flagstat_consistent(
        context: dg.AssetCheckExecutionContext,
    ) -> dg.AssetCheckResult:
        """rec_no runs 0..n-1 once each, matches the files table, and flagstat adds up."""
        key = context.partition_key
        with _connection(context, db_key) as connection:
            integrity = sql.partition_integrity(connection, config, key)
            problems = sql.flagstat(connection, config, key).inconsistencies()
        return dg.AssetCheckResult(
            passed=integrity.consistent and not problems,
            metadata={
                "rows": integrity.rows,
                "duplicated_rows": integrity.duplicated_rows,
                "files_read_count": integrity.files_read_count or 0,
                "flagstat_problems": "; ".join(problems) or "none",
            },
        )

    return [row_count_matches_source, rows_unique_and_flagstat_consistent]


# ---------------------------------------------------------------------------------------------
# Everything together


def build_summary_definitions(settings: IngestSettings) -> dg.Definitions:
    """Summary assets, checks on ``reads``, the overview and its schedule, the DuckDB resource."""
    summaries = build_summary_assets(settings)
    overview = build_overview_asset(settings)
    summary_job = dg.define_asset_job(
        f"{settings.prefix}summarize_reads",
        selection=summaries,
        description="Compute the read statistics of one ingested file.",
    )
    overview_job = dg.define_asset_job(
        f"{settings.prefix}refresh_read_stats_overview",
        selection=[overview],
        description="Rebuild the cross-file overview from whatever partitions exist.",
    )
    # Runs the reads checks alone against what is stored (no re-ingest). Dagster 1.13 cannot take
    # a partition key for a checks-only job, so launch it with the ``dagster/partition`` tag.
    check_job = dg.define_asset_job(
        f"{settings.prefix}check_reads",
        selection=dg.AssetSelection.checks_for_assets(settings.asset_key),
        description="Re-run the checks of one stored partition of reads (tag dagster/partition).",
    )
    schedules = []
    if not settings.summary_automation:
        schedules.append(
            dg.ScheduleDefinition(
                name=f"{settings.prefix}read_stats_overview_schedule",
                cron_schedule=settings.summary_cron,
                job=overview_job,
                default_status=dg.DefaultScheduleStatus.RUNNING,
                description="Refreshes read_stats_overview (cron from summary_cron).",
            )
        )
    return dg.Definitions(
        assets=[*summaries, overview],
        asset_checks=build_reads_checks(settings),
        jobs=[summary_job, overview_job, check_job],
        schedules=schedules,
        resources={duckdb_resource_key(settings): duckdb_resource(settings)},
    )
