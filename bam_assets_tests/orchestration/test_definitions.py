"""Everything loads from the defs folder, and the asset graph is what the README describes."""

import dagster as dg

from bam_assets.definitions import defs
from bam_assets.ingest_definitions import build_ingest_definitions
from bam_assets.ingest_settings import IngestSettings


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
    first = IngestSettings(roots=[str(tmp_path)], database=str(tmp_path / "db.duckdb"))
    second = IngestSettings(roots=[str(tmp_path)], database=first.database, name="nanopore")
    merged = dg.Definitions.merge(build_ingest_definitions(first), build_ingest_definitions(second))
    nanopore_reads = merged.resolve_assets_def(dg.AssetKey(["nanopore", "reads"]))
    assert nanopore_reads.partitions_def.name == "nanopore_alignment_files"
    assert merged.resolve_sensor_def("nanopore_alignment_file_sensor") is not None
    assert second.io_manager().reads_table == "nanopore_reads"
    assert first.io_manager().reads_table == "reads"
