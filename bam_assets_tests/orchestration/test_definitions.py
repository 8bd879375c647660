"""Everything loads from the defs folder, and the asset graph is what the README describes."""

import dagster as dg

from bam_assets.definitions import defs
from bam_assets.orchestration.definitions import build_instance_definitions, ingest_resources
from bam_assets.orchestration.project_paths import EXAMPLE_DATA_DIR
from bam_assets.orchestration.settings import IngestSettings, StoreSettings


def test_definitions_load_and_resolve():
    definitions = defs()
    definitions.resolve_all_job_defs()
    reads = definitions.resolve_assets_def("reads")
    assert reads.partitions_def == dg.DynamicPartitionsDefinition(name="alignment_files")
    assert reads.group_names_by_key[dg.AssetKey("reads")] == "alignments"
    assert reads.get_io_manager_key_for_asset_key(dg.AssetKey("reads")) == "reads_io_manager"
    assert set(reads.required_resource_keys) >= {"alignment_sources", "reads_io_manager"}
    assert definitions.resolve_job_def("ingest_reads") is not None


def test_a_second_named_instance_has_its_own_keys_partitions_and_tables(tmp_path):
    first = IngestSettings(
        roots=[str(tmp_path)], store=StoreSettings(database=str(tmp_path / "db.sqlite"))
    )
    second = IngestSettings(roots=[str(tmp_path)], store=first.store, name="nanopore")
    merged = dg.Definitions.merge(
        build_instance_definitions(first), build_instance_definitions(second)
    )
    nanopore_reads = merged.resolve_assets_def(dg.AssetKey(["nanopore", "reads"]))
    assert nanopore_reads.partitions_def.name == "nanopore_alignment_files"
    assert merged.resolve_sensor_def("nanopore_alignment_file_sensor") is not None
    assert ingest_resources(second)[second.io_manager_key].store.tables.reads == "nanopore_reads"
    assert ingest_resources(first)[first.io_manager_key].store.tables.reads == "reads"


def test_every_catalog_writes_in_one_pool_and_has_its_maintenance(tmp_path):
    """Nothing above storage depends on where the catalog lives: the same pool, the same jobs
    (the earlier names of the two catalogs still mean them)."""
    for backend in ("local", "postgres", "duckdb", "ducklake"):
        settings = IngestSettings(roots=[str(tmp_path)], store=StoreSettings(backend=backend))
        definitions = build_instance_definitions(settings)
        for key in ("reads", "flagstat", "read_stats_overview"):
            assert definitions.resolve_assets_def(key).op.pool == "lake_writer"
        maintenance = definitions.resolve_job_def("maintain_lake")
        assert {node.definition.pool for node in maintenance.nodes} == {"lake_maintenance"}
        assert definitions.resolve_schedule_def("maintain_lake_schedule").cron_schedule == (
            "0 3 * * *"
        )
    assert StoreSettings(backend="duckdb").catalog == "local"
    assert StoreSettings(backend="ducklake").catalog == "postgres"


def test_a_dropped_file_gets_its_summaries_in_one_process_unattended():
    """The sensor's job materializes reads and the per-file summaries, in one process; the
    automation sensor and the file sensor run by default; the file sensor says what it watches."""
    definitions = defs()
    ingest = definitions.resolve_job_def("ingest_reads")
    assert ingest.executor_def is dg.in_process_executor
    assert {key.to_user_string() for key in ingest.asset_layer.selected_asset_keys} == {
        "reads",
        "flagstat",
        "idxstats",
        "read_stats",
        "read_distributions",
    }
    for name in ("summarize_reads", "refresh_read_stats_overview", "export_multiqc"):
        assert definitions.resolve_job_def(name).executor_def is dg.in_process_executor
    automation = definitions.resolve_sensor_def("summaries_automation_sensor")
    assert automation.default_status == dg.DefaultSensorStatus.RUNNING
    files = definitions.resolve_sensor_def("alignment_file_sensor")
    assert files.default_status == dg.DefaultSensorStatus.RUNNING
    assert files.description.startswith(f"Watches {EXAMPLE_DATA_DIR} (*.bam *.cram *.sam)")
    assert defs().resolve_assets_def("flagstat").group_names_by_key == {
        dg.AssetKey("flagstat"): "summaries"
    }


def test_a_celery_deployment_runs_every_job_on_its_workers(tmp_path, monkeypatch):
    """``run_executor: celery_k8s`` (BAM_ASSETS_RUN_EXECUTOR, as deploy/helm/values-celery.yaml
    sets it) gives every job the Celery executor, the maintenance and purge jobs too."""
    from dagster_celery_k8s import celery_k8s_job_executor

    monkeypatch.setenv("BAM_ASSETS_RUN_EXECUTOR", "celery_k8s")
    monkeypatch.setenv("BAM_ASSETS_STORE", "postgres")
    definitions = defs()
    jobs = {job.name: job for job in definitions.resolve_all_job_defs()}
    assert {"ingest_reads", "purge_removed_files", "maintain_lake"} <= set(jobs)
    for name, job in jobs.items():
        if name != "__ASSET_JOB":
            assert job.executor_def is celery_k8s_job_executor, name
    monkeypatch.delenv("BAM_ASSETS_RUN_EXECUTOR")
    for job in defs().resolve_all_job_defs():
        assert job.executor_def is dg.in_process_executor, job.name
