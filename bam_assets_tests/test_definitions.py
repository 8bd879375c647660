"""Everything loads from the defs folder, and the asset graph is what the README describes."""

import dagster as dg

from bam_assets.definitions import defs


def test_definitions_load_and_resolve():
    definitions = defs()
    definitions.resolve_all_job_defs()
    reads = definitions.resolve_assets_def("reads")
    assert reads.partitions_def == dg.DynamicPartitionsDefinition(name="alignment_files")
    assert reads.group_names_by_key[dg.AssetKey("reads")] == "alignments"
    assert reads.get_io_manager_key_for_asset_key(dg.AssetKey("reads")) == "reads_io_manager"
    assert set(reads.required_resource_keys) >= {"alignment_sources", "reads_io_manager"}
    assert definitions.resolve_job_def("ingest_reads") is not None
