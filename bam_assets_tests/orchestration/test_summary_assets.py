"""The summary assets, the checks on reads, the overview and its schedule, end to end."""

from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.orchestration.definitions import (
    build_instance_definitions,
    build_summary_definitions,
    ingest_resources,
)
from bam_assets.orchestration.reads_asset import build_reads_asset
from bam_assets.orchestration.settings import IngestSettings
from bam_assets.orchestration.summary_assets import build_summary_assets
from bam_assets.reading.options import ReaderOptions
from bam_assets.reading.reader import count_records
from bam_assets_tests.helpers import (
    REAL_DATA,
    materialize_partition,
    read_session,
    settings_for,
    store_connection,
)

PAIRED = "umitools_paired.bam"


def run_partition(settings, instance, key, assets_and_checks):
    """Materializes ``assets_and_checks`` for ``key`` with the instance's resources (the
    summaries use its store)."""
    return materialize_partition(settings, key, instance, assets=assets_and_checks)


@pytest.fixture
def settings(tmp_path: Path) -> IngestSettings:
    return settings_for(REAL_DATA, tmp_path / "reads.sqlite", coverage_window=1_000)


def parts(settings: IngestSettings):
    summaries = build_summary_assets(settings)
    summary = build_summary_definitions(settings, summaries)
    overview = next(a for a in summary.assets if a.key.path[-1] == "read_stats_overview")
    return build_reads_asset(settings), summaries, overview, list(summary.asset_checks)


def test_definitions_load_with_summaries(settings):
    defs = build_instance_definitions(settings)
    defs.resolve_all_job_defs()
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "reads",
        "flagstat",
        "idxstats",
        "read_stats",
        "read_distributions",
        "read_stats_overview",
        "multiqc_folder",
    }
    assert defs.resolve_schedule_def("read_stats_overview_schedule").cron_schedule == "0 6 * * *"


def test_summary_assets_materialize_samtools_numbers_and_checks_pass(settings, instance):
    reads, summaries, _, checks = parts(settings)
    result = run_partition(settings, instance, PAIRED, [reads, *summaries, *checks])
    assert result.success
    evaluations = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    assert evaluations == {
        "row_count_matches_source": True,
        "rows_unique_and_flagstat_consistent": True,
    }
    flagstat_md = result.asset_materializations_for_node("flagstat")[0].metadata
    assert flagstat_md["records"].value == 8451
    assert "| mapped | 8,305 | 0 | 98.27% : N/A |" in flagstat_md["flagstat"].value
    distributions = result.asset_materializations_for_node("read_distributions")[0].metadata
    assert distributions["mapq"].value.startswith("![mapping quality](data:image/png;base64,")
    with read_session(settings) as session:
        stored = dict(
            session.connection.execute(
                "SELECT category, qc_passed FROM read_stats_flagstat WHERE key = ?", [PAIRED]
            ).fetchall()
        )
        summary = dict(
            session.connection.execute(
                "SELECT field, value FROM read_stats_summary WHERE key = ?", [PAIRED]
            ).fetchall()
        )
    assert stored["total"] == 8451 and stored["secondary"] == 5601
    assert summary["reads_mapped_and_paired"] == 2558

    # The headline numbers are numeric metadata (Dagster plots them per partition), equal to
    # samtools' SN values.
    read_stats = result.asset_materializations_for_node("read_stats")[0].metadata
    sn = {
        line.split("\t")[1].rstrip(":"): line.split("\t")[2]
        for line in pysam.stats(str(REAL_DATA / PAIRED)).splitlines()
        if line.startswith("SN\t")
    }
    total = int(sn["raw total sequences"])
    assert all(
        isinstance(read_stats[name], dg.FloatMetadataValue)
        for name in (
            "percent_mapped",
            "percent_properly_paired",
            "percent_duplicates",
            "mean_insert_size",
            "average_quality",
            "error_rate",
        )
    )
    assert read_stats["percent_mapped"].value == round(100 * int(sn["reads mapped"]) / total, 3)
    assert (
        f"{read_stats['percent_properly_paired'].value:.1f}"
        == sn["percentage of properly paired reads (%)"]
    )
    assert read_stats["percent_duplicates"].value == round(
        100 * int(sn["reads duplicated"]) / total, 3
    )
    assert f"{read_stats['mean_insert_size'].value:.1f}" == sn["insert size average"]
    assert f"{read_stats['average_quality'].value:.1f}" == sn["average quality"]
    assert read_stats["error_rate"].value == pytest.approx(float(sn["error rate"]), rel=1e-6)


def test_checks_fail_on_a_tampered_partition(settings, instance):
    reads, _, _, checks = parts(settings)
    assert run_partition(settings, instance, PAIRED, [reads, *checks]).success
    with store_connection(settings, write=True) as connection:
        connection.execute(
            "INSERT INTO reads SELECT * FROM reads WHERE key = ? AND rec_no = 0", [PAIRED]
        )
    check_job = build_instance_definitions(settings).resolve_job_def("check_reads")
    result = check_job.execute_in_process(
        tags={"dagster/partition": PAIRED}, instance=instance, raise_on_error=False
    )
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evaluations) == {"row_count_matches_source", "rows_unique_and_flagstat_consistent"}
    assert not any(evaluation.passed for evaluation in evaluations.values())
    row_count = evaluations["row_count_matches_source"].metadata
    assert row_count["rows"].value == 8452
    assert (
        row_count["records_in_file"].value
        == count_records(REAL_DATA / PAIRED, ReaderOptions())
        == 8451
    )
    assert evaluations["rows_unique_and_flagstat_consistent"].metadata["duplicated_rows"].value == 1


def test_overview_reflects_existing_partitions_only(settings, instance):
    reads, _, overview, _ = parts(settings)
    for key in (PAIRED, "pysam_example_btag.sam"):
        run_partition(settings, instance, key, [reads])
    result = dg.materialize([overview], instance=instance, resources=ingest_resources(settings))
    metadata = result.asset_materializations_for_node("read_stats_overview")[0].metadata
    assert metadata["files"].value == 2
    assert metadata["records"].value == 8451 + 5
    assert "**total**" in metadata["overview"].value
    assert metadata["per_file"].value.startswith("![files](data:image/png;base64,")
    assert "2 of 2 files" in metadata["per_file"].value


def test_schedule_evaluates_to_an_overview_run(settings):
    defs = build_instance_definitions(settings)
    schedule = defs.resolve_schedule_def("read_stats_overview_schedule")
    with dg.build_schedule_context() as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert schedule.job_name == "refresh_read_stats_overview"
    custom = build_instance_definitions(
        IngestSettings(roots=[], store=settings.store, summary_cron="*/15 * * * *")
    )
    assert custom.resolve_schedule_def("read_stats_overview_schedule").cron_schedule == (
        "*/15 * * * *"
    )


def test_automation_replaces_the_schedule_when_asked(settings):
    automated = IngestSettings(roots=[], store=settings.store, summary_automation=True)
    defs = build_summary_definitions(automated, build_summary_assets(automated))
    assert not list(defs.schedules or [])
    build_instance_definitions(automated).resolve_all_job_defs()
    overview = next(a for a in defs.assets if a.key.path[-1] == "read_stats_overview")
    assert overview.automation_conditions_by_key[overview.key] is not None
