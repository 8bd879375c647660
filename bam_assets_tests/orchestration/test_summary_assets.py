"""The summary assets, the checks on reads, the overview schedule and the CLI, end to end."""

import io
import shutil
from contextlib import redirect_stdout
from pathlib import Path

import dagster as dg
import duckdb
import pysam
import pytest

from bam_assets import cli, duckdb_store, read_stats_sql
from bam_assets.alignment_reader import ReaderOptions, count_records
from bam_assets.ingest_definitions import build_ingest_definitions, build_reads_asset
from bam_assets.ingest_settings import IngestSettings
from bam_assets.summary_definitions import build_summary_definitions
from bam_assets_tests.conftest import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    ingest_files,
    materialize_partition,
    samtools_input,
    settings_for,
)

PAIRED = "umitools_paired.bam"


def samtools_arguments(name: str) -> list[str]:
    return samtools_input(REAL_DATA / name)


def run_partition(settings, instance, key, assets_and_checks):
    """Materializes ``assets_and_checks`` for ``key`` with the summaries' DuckDB resource."""
    summary = build_summary_definitions(settings)
    return materialize_partition(
        settings, key, instance, assets=assets_and_checks, resources=dict(summary.resources)
    )


@pytest.fixture
def settings(tmp_path: Path) -> IngestSettings:
    return settings_for(REAL_DATA, tmp_path / "reads.duckdb", coverage_window=1_000)


def parts(settings: IngestSettings):
    summary = build_summary_definitions(settings)
    assets = list(summary.assets)
    per_partition = [a for a in assets if a.partitions_def is not None]
    overview = next(a for a in assets if a.partitions_def is None)
    return build_reads_asset(settings), per_partition, overview, list(summary.asset_checks)


def test_definitions_load_with_summaries(settings):
    defs = build_ingest_definitions(settings)
    defs.resolve_all_job_defs()
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == {
        "reads",
        "flagstat",
        "idxstats",
        "read_stats",
        "read_distributions",
        "read_stats_overview",
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
    assert "```text" in distributions["mapq"].value
    config = duckdb_store.StoreConfig(database=settings.database)
    with duckdb_store.connect(config, read_only=True) as connection:
        stored = dict(
            connection.execute(
                "SELECT category, qc_passed FROM read_stats_flagstat WHERE key = ?", [PAIRED]
            ).fetchall()
        )
        summary = dict(
            connection.execute(
                "SELECT field, value FROM read_stats_summary WHERE key = ?", [PAIRED]
            ).fetchall()
        )
    assert stored["total"] == 8451 and stored["secondary"] == 5601
    assert summary["reads_mapped_and_paired"] == 2558


def test_checks_fail_on_a_tampered_partition(settings, instance):
    reads, _, _, checks = parts(settings)
    assert run_partition(settings, instance, PAIRED, [reads, *checks]).success
    with duckdb.connect(settings.database) as connection:
        connection.execute(
            "INSERT INTO reads SELECT * EXCLUDE (is_paired, is_proper_pair, is_unmapped, "
            "is_mate_unmapped, is_reverse, is_mate_reverse, is_read1, is_read2, is_secondary, "
            "is_qcfail, is_duplicate, is_supplementary) FROM reads WHERE key = ? AND rec_no = 0",
            [PAIRED],
        )
    check_job = build_ingest_definitions(settings).resolve_job_def("check_reads")
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
    summary = build_summary_definitions(settings)
    result = dg.materialize([overview], instance=instance, resources=summary.resources)
    metadata = result.asset_materializations_for_node("read_stats_overview")[0].metadata
    assert metadata["files"].value == 2
    assert metadata["records"].value == 8451 + 5
    assert "**total**" in metadata["overview"].value


def test_schedule_evaluates_to_an_overview_run(settings):
    defs = build_ingest_definitions(settings)
    schedule = defs.resolve_schedule_def("read_stats_overview_schedule")
    with dg.build_schedule_context() as context:
        requests = list(schedule.evaluate_tick(context).run_requests or [])
    assert len(requests) == 1
    assert schedule.job_name == "refresh_read_stats_overview"
    custom = build_ingest_definitions(
        IngestSettings(roots=[], database=settings.database, summary_cron="*/15 * * * *")
    )
    assert custom.resolve_schedule_def("read_stats_overview_schedule").cron_schedule == (
        "*/15 * * * *"
    )


def test_automation_replaces_the_schedule_when_asked(settings):
    automated = IngestSettings(roots=[], database=settings.database, summary_automation=True)
    defs = build_summary_definitions(automated)
    assert not list(defs.schedules or [])
    build_ingest_definitions(automated).resolve_all_job_defs()
    overview = next(a for a in defs.assets if a.partitions_def is None)
    assert overview.automation_conditions_by_key[overview.key] is not None


@pytest.fixture(scope="module")
def cli_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("cli") / "reads.duckdb"
    ingest_files(settings_for(REAL_DATA, database), REAL_FILES)
    return database


def cli_output(*argv: str) -> str:
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        assert cli.main(list(argv)) == 0
    return buffer.getvalue()


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_flagstat_and_idxstats_are_byte_identical(cli_database, name):
    db = ["--db", str(cli_database)]
    assert cli_output("flagstat", name, *db) == pysam.flagstat(*samtools_arguments(name))
    assert cli_output("idxstats", name, "--reference", str(CRAM_REFERENCE), *db) == pysam.idxstats(
        *samtools_arguments(name)
    )


@pytest.mark.parametrize("name", REAL_FILES)
def test_cli_stats_prints_samtools_sn_lines(cli_database, name):
    expected = [
        line
        for line in pysam.stats(*samtools_arguments(name)).splitlines()
        if line.startswith("SN\t") and "is sorted" not in line
    ]
    by_path = cli_output("stats", str(REAL_DATA / name), "--db", str(cli_database))
    assert by_path.splitlines() == expected


def test_cli_resolves_missing_key(cli_database):
    with pytest.raises(SystemExit):
        cli.main(["flagstat", "no-such-file.bam", "--db", str(cli_database)])


def test_cli_reads_a_copy_without_summary_tables(cli_database, tmp_path):
    copy = tmp_path / "copy.duckdb"
    shutil.copyfile(cli_database, copy)
    config = duckdb_store.StoreConfig(database=str(copy))
    with duckdb_store.connect(config, read_only=True) as connection:
        assert read_stats_sql.flagstat(connection, config, PAIRED).total == (8451, 0)
