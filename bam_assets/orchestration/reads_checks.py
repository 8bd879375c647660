"""Asset checks on the ``reads`` asset: the partition holds what its file holds, once."""

import dagster as dg

from bam_assets.orchestration.resources import AlignmentSources, StoreResource
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.overview import partition_integrity


def build_reads_checks(settings: IngestSettings) -> list[dg.AssetChecksDefinition]:
    store_key = settings.store_key
    sources_key = settings.sources_key

    @dg.asset_check(
        asset=settings.reads_key,
        name="row_count_matches_source",
        partitions_def=settings.partitions_def(),
        required_resource_keys={store_key, sources_key},
    )
    def row_count_matches_source(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
        """The partition has exactly as many rows as samtools view -c counts in its file."""
        key = context.partition_key
        sources: AlignmentSources = getattr(context.resources, sources_key)
        expected = sources.count_records(key)
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(all_cpus=True) as session:
            integrity = partition_integrity(session.connection, session.tables, key)
        return dg.AssetCheckResult(
            passed=integrity.rows == expected,
            metadata={"rows": integrity.rows, "records_in_file": expected},
        )

    @dg.asset_check(
        asset=settings.reads_key,
        name="rows_unique_and_flagstat_consistent",
        partitions_def=settings.partitions_def(),
        required_resource_keys={store_key},
    )
    def rows_unique_and_flagstat_consistent(
        context: dg.AssetCheckExecutionContext,
    ) -> dg.AssetCheckResult:
        """rec_no runs 0..n-1 once each, matches the files table, and flagstat adds up."""
        key = context.partition_key
        store: StoreResource = getattr(context.resources, store_key)
        with store.session(all_cpus=True) as session:
            integrity = partition_integrity(session.connection, session.tables, key)
            problems = flagstat(session.connection, session.tables, key).inconsistencies()
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
