"""The read statistics as Dagster assets: per-file summaries, the cross-file overview and the
MultiQC folder.

Per-file assets share the ``reads`` asset's dynamic partitions and run the statistics' SQL in the
store (``bam_assets.stats``); no read ever reaches Python. The file sensor's runs materialize them
with each new file (see ``definitions``), and their eager automation condition makes them follow
``reads`` partitions materialized any other way (a backfill, ``bam-assets ingest``) while the
automation sensor runs, as it does by default.

The cross-file ``read_stats_overview`` is unpartitioned and refreshed by a schedule
(``summary_cron``, daily by default). Why a schedule rather than declarative automation:
``AutomationCondition.on_cron`` waits until every upstream partition has been updated since the
tick, and with one dynamic partition per file that may never happen, so the overview would never
refresh. The schedule runs whatever partitions exist. ``summary_automation=True`` switches the
overview to ``cron_tick_passed(...) & ~in_progress()`` (no upstream wait).

``multiqc_folder`` writes samtools' stats, flagstat and idxstats files of every partition into a
folder for MultiQC; it runs on demand (the complete stats text costs about three times the
ingest, and only partitions ingested since the last export are written again).
"""

import time
from collections.abc import Callable
from pathlib import Path

import dagster as dg
from pydantic import Field

from bam_assets.model.sam_header import header_contigs
from bam_assets.orchestration import plots
from bam_assets.orchestration.charts import (
    coverage_tracks,
    equal_width_bins,
    flagstat_markdown,
    markdown_table,
    mean_quality_per_cycle,
    number,
)
from bam_assets.orchestration.multiqc_export import export_multiqc_folder
from bam_assets.orchestration.resources import StoreResource
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.stats.distributions import distribution, distribution_queries
from bam_assets.stats.flagstat import FLAGSTAT_TABLE, flagstat, flagstat_rows
from bam_assets.stats.idxstats import IDXSTATS_TABLE, idxstats, idxstats_rows, reference_lengths
from bam_assets.stats.overview import OVERVIEW_COLUMNS, OVERVIEW_TABLE, overview_rows, overview_sql
from bam_assets.stats.samtools_text import sn_values
from bam_assets.stats.summary_numbers import (
    DEFAULT_MAX_INSERT_SIZE,
    SUMMARY_TABLE,
    SummaryNumbers,
    stored_summary_numbers,
    summary_numbers,
    summary_rows,
)
from bam_assets.storage.store import StoreSession

GROUP = "summaries"
# MAPQ 255 means "not available" (SAM specification); it gets its own labelled bar.
_MAPQ_UNAVAILABLE = 255
# Files drawn one bar each in the overview's picture.
_OVERVIEW_MAX_FILES = 60


def headline_metadata(numbers: SummaryNumbers) -> dict[str, dg.MetadataValue]:
    """The numbers Dagster plots per partition to compare files (MultiQC's general statistics)."""
    return {
        "percent_mapped": dg.MetadataValue.float(round(numbers.percent_mapped, 3)),
        "percent_properly_paired": dg.MetadataValue.float(
            round(numbers.percent_properly_paired, 3)
        ),
        "percent_duplicates": dg.MetadataValue.float(round(numbers.percent_duplicates, 3)),
        "mean_insert_size": dg.MetadataValue.float(round(numbers.insert_size_average, 1)),
        "average_quality": dg.MetadataValue.float(round(numbers.average_quality, 2)),
        "error_rate": dg.MetadataValue.float(numbers.error_rate),
    }


def distribution_pictures(
    rows: Callable[[str], list[tuple]], header_text: str, coverage_window: int
) -> dict[str, dg.MetadataValue]:
    """The partition's charts, drawn from its stored distribution tables (``rows(name)``)."""
    quality = mean_quality_per_cycle((r[0], r[1], r[2], r[3]) for r in rows("quality_by_cycle"))
    quality_values = [p.mean_quality for points in quality.values() for p in points]
    insert = equal_width_bins(
        [(r[0], r[1], r[2], r[3]) for r in rows("insert_size")],
        ("inward", "outward", "other"),
        overflow_from=DEFAULT_MAX_INSERT_SIZE,
    )
    gc = rows("gc_content")
    lengths = equal_width_bins([(r[0], r[1]) for r in rows("read_length")], ("reads",))
    mapq_rows = rows("mapq")
    mapq = equal_width_bins(
        [(q, n) for q, n in mapq_rows if q != _MAPQ_UNAVAILABLE],
        ("reads",),
        max_bins=64,
        overflow_from=_MAPQ_UNAVAILABLE
        if any(q == _MAPQ_UNAVAILABLE for q, _ in mapq_rows)
        else None,
    )
    tracks, left_out = coverage_tracks(
        header_contigs(header_text), rows("coverage_window"), coverage_window
    )
    pairs = sum(sum(c) for c in insert.counts.values()) + sum((insert.overflow or {}).values())
    pictures = {
        "quality_per_cycle": (
            "quality per cycle",
            plots.quality_per_cycle_figure(quality),
            f"Mean base quality per cycle ({', '.join(quality) or 'no'} fragments), "
            + (
                f"from {min(quality_values):.1f} to {max(quality_values):.1f}"
                if quality_values
                else "no bases"
            )
            + "; merged cycles average their bases.",
        ),
        "insert_size": (
            "insert size",
            plots.bins_figure(insert, "Insert size by orientation", "insert size", "pairs"),
            f"{number(pairs)} pairs; bins of {number(insert.width)}; the last bar counts "
            f"insert sizes of {number(DEFAULT_MAX_INSERT_SIZE)} and more.",
        ),
        "gc_content": (
            "GC content",
            plots.gc_content_figure(gc),
            f"{number(sum(r[1] for r in gc))} first and {number(sum(r[2] for r in gc))} last "
            "fragments by GC percent.",
        ),
        "read_length": (
            "read length",
            plots.bins_figure(lengths, "Read length", "read length (bases)", "reads"),
            f"{number(sum(lengths.counts['reads']))} reads; bins of {number(lengths.width)} bases.",
        ),
        "mapq": (
            "mapping quality",
            plots.bins_figure(mapq, "Mapping quality", "MAPQ", "reads"),
            f"{number(sum(n for _, n in mapq_rows))} reads (primary, mapped, not duplicates or "
            "QC failures)" + ("; 255: not available." if mapq.overflow_from is not None else "."),
        ),
        "coverage": (
            "coverage",
            plots.coverage_figure(tracks, left_out),
            f"Mean depth in windows of {number(coverage_window)} bases along "
            f"{len(tracks)} contig(s) with reads.",
        ),
    }
    return {
        name: dg.MetadataValue.md(plots.markdown_image(title, figure, caption))
        for name, (title, figure, caption) in pictures.items()
    }


def build_summary_assets(settings: IngestSettings) -> list[dg.AssetsDefinition]:
    """``flagstat``, ``idxstats``, ``read_stats`` and ``read_distributions`` per partition."""
    store_key = settings.store_key
    common = {
        "partitions_def": settings.partitions_def(),
        "deps": [settings.reads_key],
        "required_resource_keys": {store_key},
        "kinds": {"duckdb"},
        "group_name": GROUP,
        "pool": settings.writer_pool,
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
                        [
                            (r.name, number(r.length), number(r.mapped), number(r.unmapped))
                            for r in busy[:20]
                        ],
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
                **headline_metadata(numbers),
                "summary_numbers": dg.MetadataValue.md(
                    markdown_table(
                        ("SN", "value"), [(label, value) for label, value, _ in sn_values(numbers)]
                    )
                ),
            }

        return timed(context, work)

    @dg.asset(key=settings.asset_key("read_distributions"), **common)
    def read_distributions(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """Quality per cycle, insert size, GC content, read length, MAPQ and coverage, as
        tables and pictures."""

        def work(session: StoreSession, key: str) -> dict[str, object]:
            header = session.header_text(key)
            queries = distribution_queries(
                session.tables, header, coverage_window=settings.coverage_window
            )
            counts = {
                query.name: session.replace_partition_rows(
                    query.table, key, query.select_sql, query.parameters
                )
                for query in queries
            }

            def rows(name: str) -> list[tuple]:
                return distribution(session.connection, session.tables, key, name)

            coverage = sorted(rows("coverage_contig"), key=lambda row: row[4], reverse=True)
            return {
                "dagster/row_count": sum(counts.values()),
                **{f"rows_{name}": count for name, count in counts.items()},
                **distribution_pictures(rows, header, settings.coverage_window),
                "coverage_by_contig": dg.MetadataValue.md(
                    markdown_table(
                        ("contig", "length", "reads", "mean depth", "breadth"),
                        [
                            (
                                row[1],
                                number(row[2]),
                                number(row[3]),
                                f"{row[6]:.3f}",
                                f"{row[7]:.4f}",
                            )
                            for row in coverage[:20]
                            if row[3]
                        ],
                    )
                ),
            }

        return timed(context, work)

    return [flagstat_asset, idxstats_asset, read_stats, read_distributions]


OVERVIEW_TOTAL_COLUMNS = range(2, 10)


def overview_picture(rows: list[tuple], numbers: dict[str, SummaryNumbers]) -> str:
    """Reads, % mapped, % duplicates, mean insert size and average quality per file (the first
    ``_OVERVIEW_MAX_FILES`` by key)."""
    shown = rows[:_OVERVIEW_MAX_FILES]
    keys = [row[0] for row in shown]

    def metric(name: str) -> list[float]:
        return [float(getattr(numbers[key], name)) if key in numbers else 0.0 for key in keys]

    figure = plots.per_file_figure(
        keys,
        [
            ("records", [float(row[2]) for row in shown]),
            ("% mapped", metric("percent_mapped")),
            ("% duplicates", metric("percent_duplicates")),
            ("insert size", metric("insert_size_average")),
            ("avg. quality", metric("average_quality")),
        ],
    )
    missing = [key for key in keys if key not in numbers]
    caption = f"{len(keys)} of {len(rows)} files." + (
        f" No read_stats yet (shown as 0) for: {', '.join(missing)}." if missing else ""
    )
    return plots.markdown_image("files", figure, caption)


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
        deps=[settings.reads_key, settings.asset_key("read_stats")],
        required_resource_keys={store_key},
        kinds={"duckdb"},
        group_name=GROUP,
        pool=settings.writer_pool,
        automation_condition=automation,
    )
    def read_stats_overview(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        """One row per ingested file with its key read counts and numbers, plus totals."""
        started = time.monotonic()
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(all_cpus=True) as session:
            session.replace_table(OVERVIEW_TABLE, overview_sql(session.tables))
            rows = overview_rows(session.connection, session.tables)
            numbers = stored_summary_numbers(session.connection, session.tables)
        totals = ["**total**", ""] + [sum(row[i] for row in rows) for i in OVERVIEW_TOTAL_COLUMNS]
        totals.append(round(sum(row[10] for row in rows), 3))
        shown = [(*row[:2], *(number(v) for v in row[2:10]), round(row[10], 3)) for row in rows]
        totals = [*totals[:2], *(number(v) for v in totals[2:10]), totals[10]]
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": len(rows),
                "files": len(rows),
                "records": sum(row[2] for row in rows),
                "per_file": dg.MetadataValue.md(overview_picture(rows, numbers)),
                "overview": dg.MetadataValue.md(markdown_table(OVERVIEW_COLUMNS, [*shown, totals])),
                "seconds": round(time.monotonic() - started, 3),
            }
        )

    return read_stats_overview


class MultiQCFolderConfig(dg.Config):
    folder: str = Field(
        default="",
        description="Folder to write; empty: 'multiqc' beside the local catalog file.",
    )


def build_multiqc_asset(settings: IngestSettings) -> dg.AssetsDefinition:
    store_key = settings.store_key

    @dg.asset(
        key=settings.asset_key("multiqc_folder"),
        deps=[settings.reads_key],
        required_resource_keys={store_key},
        kinds={"duckdb"},
        group_name=GROUP,
        pool=settings.writer_pool,
    )
    def multiqc_folder(
        context: dg.AssetExecutionContext, config: MultiQCFolderConfig
    ) -> dg.MaterializeResult:
        """samtools stats, flagstat and idxstats files of every stored file, for MultiQC."""
        folder = Path(config.folder or Path(settings.store.database).parent / "multiqc")
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(read_only=True, all_cpus=True) as session:
            result = export_multiqc_folder(
                session,
                folder,
                reference_lengths(settings.reading.reference),
                progress=context.log.info,
            )
        return dg.MaterializeResult(
            metadata={
                "folder": dg.MetadataValue.path(str(folder)),
                "samples": len(result.samples),
                "written": len(result.written),
                "unchanged": len(result.kept),
                "removed": len(result.removed),
                "command": dg.MetadataValue.md(
                    f"`MULTIQC_NO_VERSION_CHECK=1 multiqc --no-ai {folder}`"
                ),
            }
        )

    return multiqc_folder
