"""The read statistics as Dagster assets: per-file summaries and the cross-file overview.

Per-file assets share the ``reads`` asset's dynamic partitions and run the statistics' SQL in the
store (``bam_assets.stats``); no read ever reaches Python. The cross-file
``read_stats_overview`` is unpartitioned and refreshed by a schedule (``summary_cron``, daily by
default).

Why a schedule by default rather than declarative automation: ``AutomationCondition.on_cron``
waits until every upstream partition has been updated since the tick, and with one dynamic
partition per file that may never happen, so the overview would never refresh. The schedule runs
whatever partitions exist. ``summary_automation=True`` switches the overview to
``cron_tick_passed(...) & ~in_progress()`` (no upstream wait), for deployments that run the
automation sensor instead of the schedule daemon.
"""

import time
from collections.abc import Callable

import dagster as dg

from bam_assets.orchestration.charts import bar_chart, flagstat_markdown, markdown_table
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import WRITER_POOL, IngestSettings
from bam_assets.stats.distributions import distribution, distribution_queries
from bam_assets.stats.flagstat import FLAGSTAT_TABLE, flagstat, flagstat_rows
from bam_assets.stats.idxstats import IDXSTATS_TABLE, idxstats, idxstats_rows, reference_lengths
from bam_assets.stats.overview import OVERVIEW_COLUMNS, OVERVIEW_TABLE, overview_rows, overview_sql
from bam_assets.stats.samtools_text import sn_values
from bam_assets.stats.summary_numbers import SUMMARY_TABLE, summary_numbers, summary_rows
from bam_assets.storage.store import StoreSession

GROUP = "read_stats"


def build_summary_assets(settings: IngestSettings) -> list[dg.AssetsDefinition]:
    """``flagstat``, ``idxstats``, ``read_stats`` and ``read_distributions`` per partition."""
    store_key = settings.store_key
    common = {
        "partitions_def": settings.partitions_def(),
        "deps": [settings.reads_key],
        "required_resource_keys": {store_key},
        "kinds": {"duckdb"},
        "group_name": GROUP,
        "pool": WRITER_POOL,
        "automation_condition": dg.AutomationCondition.eager(),
    }

    def timed(
        context: dg.AssetExecutionContext,
        work: Callable[[StoreSession, str], dict[str, object]],
    ) -> dg.MaterializeResult:
        started = time.monotonic()
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(all_cpus=True) as session:
            metadata = work(session, context.partition_key)
        metadata["seconds"] = round(time.monotonic() - started, 3)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(key=settings.asset_key("flagstat"), **common)
    def flagstat_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools flagstat of one file, QC-passed and QC-failed, computed in DuckDB."""

        def work(session: StoreSession, key: str) -> dict[str, object]:
            stats = flagstat(session.connection, session.tables, key)
            rows = session.replace_partition_rows(FLAGSTAT_TABLE, key, *flagstat_rows(stats))
            return {
                "dagster/row_count": rows,
                "records": stats.total[0] + stats.total[1],
                "flagstat": dg.MetadataValue.md(flagstat_markdown(stats)),
            }

        return timed(context, work)

    @dg.asset(key=settings.asset_key("idxstats"), **common)
    def idxstats_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools idxstats of one file: mapped and unmapped records per contig, then '*'."""
        lengths = reference_lengths(settings.reading.reference)

        def work(session: StoreSession, key: str) -> dict[str, object]:
            file_format, references = session.file_row(key)[0], session.references(key)
            rows = idxstats(
                session.connection, session.tables, key, file_format, references, lengths
            )
            stored = session.replace_partition_rows(IDXSTATS_TABLE, key, *idxstats_rows(rows))
            busy = [r for r in rows if r.mapped or r.unmapped]
            busy.sort(key=lambda r: r.mapped + r.unmapped, reverse=True)
            return {
                "dagster/row_count": stored,
                "contigs": len(rows) - 1,
                "contigs_with_reads": sum(1 for r in rows[:-1] if r.mapped or r.unmapped),
                "top_contigs": dg.MetadataValue.md(
                    markdown_table(
                        ("contig", "length", "mapped", "unmapped"),
                        [(r.name, r.length, r.mapped, r.unmapped) for r in busy[:20]],
                    )
                ),
            }

        return timed(context, work)

    @dg.asset(key=settings.asset_key("read_stats"), **common)
    def read_stats(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """samtools stats summary numbers (SN) of one file that need no reference."""

        def work(session: StoreSession, key: str) -> dict[str, object]:
            numbers = summary_numbers(session.connection, session.tables, key)
            stored = session.replace_partition_rows(SUMMARY_TABLE, key, *summary_rows(numbers))
            return {
                "dagster/row_count": stored,
                "sequences": numbers.sequences,
                "reads_mapped": numbers.reads_mapped,
                "summary_numbers": dg.MetadataValue.md(
                    markdown_table(
                        ("SN", "value"), [(label, value) for label, value, _ in sn_values(numbers)]
                    )
                ),
            }

        return timed(context, work)

    @dg.asset(key=settings.asset_key("read_distributions"), **common)
    def read_distributions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """MAPQ, length, insert size, quality per cycle, GC and coverage distributions."""

        def work(session: StoreSession, key: str) -> dict[str, object]:
            queries = distribution_queries(
                session.tables, session.header_text(key), coverage_window=settings.coverage_window
            )
            counts = {
                query.name: session.replace_partition_rows(
                    query.table, key, query.select_sql, query.parameters
                )
                for query in queries
            }

            def rows(name: str) -> list[tuple]:
                return distribution(session.connection, session.tables, key, name)

            def series(name: str, x: int, y: int) -> list[tuple[object, float]]:
                return [(row[x], float(row[y])) for row in rows(name)]

            quality = [
                (f"{row[0][0]}{row[1]}", round(float(row[4]), 1))
                for row in rows("quality_by_cycle")
            ]
            coverage = sorted(rows("coverage_contig"), key=lambda row: row[4], reverse=True)
            return {
                "dagster/row_count": sum(counts.values()),
                **{f"rows_{name}": count for name, count in counts.items()},
                "mapq": dg.MetadataValue.md(bar_chart(series("mapq", 0, 1))),
                "read_length": dg.MetadataValue.md(bar_chart(series("read_length", 0, 1))),
                "insert_size": dg.MetadataValue.md(bar_chart(series("insert_size", 0, 4))),
                "gc_content": dg.MetadataValue.md(bar_chart(series("gc_content", 0, 1))),
                "mean_quality_by_cycle": dg.MetadataValue.md(bar_chart(quality)),
                "coverage_by_contig": dg.MetadataValue.md(
                    markdown_table(
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

    return [flagstat_asset, idxstats_asset, read_stats, read_distributions]


OVERVIEW_TOTAL_COLUMNS = range(2, 10)


def build_overview_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    store_key = settings.store_key
    automation = (
        dg.AutomationCondition.cron_tick_passed(settings.summary_cron)
        & ~dg.AutomationCondition.in_progress()
        if settings.summary_automation
        else None
    )

    @dg.asset(
        key=settings.asset_key("read_stats_overview"),
        deps=[settings.reads_key],
        required_resource_keys={store_key},
        kinds={"duckdb"},
        group_name=GROUP,
        pool=WRITER_POOL,
        automation_condition=automation,
    )
    def read_stats_overview(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One row per ingested file with its key read counts, plus totals."""
        started = time.monotonic()
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(all_cpus=True) as session:
            session.replace_table(OVERVIEW_TABLE, overview_sql(session.tables))
            rows = overview_rows(session.connection, session.tables)
        totals = ["**total**", ""] + [sum(row[i] for row in rows) for i in OVERVIEW_TOTAL_COLUMNS]
        totals.append(round(sum(row[10] for row in rows), 3))
        shown = [(*row[:10], round(row[10], 3)) for row in rows]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "files": len(rows),
                "records": int(totals[2]),
                "overview": dg.MetadataValue.md(markdown_table(OVERVIEW_COLUMNS, [*shown, totals])),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    return read_stats_overview
