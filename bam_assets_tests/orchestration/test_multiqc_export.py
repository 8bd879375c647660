"""MultiQC reads our files as it reads samtools' own: over the folder ``bam-assets multiqc`` (and
the ``multiqc_folder`` asset) writes and over samtools' stats, flagstat and idxstats of the same
real files, MultiQC 1.35 reports the same general statistics and the same samtools tables.

MultiQC runs from a virtualenv of its own (``helpers.multiqc_executable``), offline.
"""

import os
import subprocess
from pathlib import Path

import dagster as dg
import pysam
import pytest

from bam_assets.orchestration.definitions import ingest_resources
from bam_assets.orchestration.multiqc_export import MANIFEST, export_multiqc_folder, sample_names
from bam_assets.orchestration.summary_assets import build_multiqc_asset
from bam_assets.stats.idxstats import reference_lengths
from bam_assets_tests.helpers import (
    CRAM_REFERENCE,
    REAL_DATA,
    REAL_FILES,
    materialize_partition,
    multiqc_executable,
    read_session,
    run_multiqc,
    samtools_input,
    settings_for,
)

# What MultiQC writes about samtools' outputs (the report's data folder).
MULTIQC_TABLES = [
    "multiqc_general_stats.txt",
    "multiqc_samtools_stats.txt",
    "multiqc_samtools_flagstat.txt",
    "multiqc_samtools_idxstats.txt",
]


def samtools_folder(folder: Path, names: dict[str, str]) -> None:
    """What samtools itself writes, under the same sample names."""
    folder.mkdir()
    for key, sample in names.items():
        arguments = samtools_input(REAL_DATA / key)
        (folder / f"{sample}.stats").write_text(pysam.stats(*arguments))
        (folder / f"{sample}.flagstat").write_text(pysam.flagstat(*arguments))
        (folder / f"{sample}.idxstats").write_text(pysam.idxstats(*arguments))


@pytest.fixture(scope="module")
def multiqc_available() -> None:
    try:
        multiqc_executable()
    except (OSError, subprocess.CalledProcessError) as error:  # no PyPI: no virtualenv
        if os.environ.get("BAM_ASSETS_REQUIRE_MULTIQC"):
            raise
        pytest.skip(f"MultiQC {error}; .ci/run makes this a failure")


def test_sample_names_survive_multiqc_name_cleaning():
    names = sample_names(["lane1/x.bam", "lane1_x.bam", "samtools_mpileup.1.bam", "a b.sam"])
    assert names == {
        "a b.sam": "a_b_sam",
        "lane1/x.bam": "lane1_x_bam",
        "lane1_x.bam": "lane1_x_bam_2",
        "samtools_mpileup.1.bam": "samtools_mpileup_1_bam",
    }


@pytest.mark.slow
def test_multiqc_reports_the_same_over_our_files_as_over_samtools(
    real_database, tmp_path: Path, multiqc_available
):
    ours = tmp_path / "ours"
    with read_session(real_database) as session:
        result = export_multiqc_folder(session, ours, reference_lengths(str(CRAM_REFERENCE)))
        assert sorted(result.written) == REAL_FILES and not result.kept
        again = export_multiqc_folder(session, ours, reference_lengths(str(CRAM_REFERENCE)))
        assert sorted(again.kept) == REAL_FILES and not again.written
    samtools = tmp_path / "samtools"
    samtools_folder(samtools, result.samples)
    for name in (ours, samtools):
        run_multiqc(name, tmp_path / f"report_{name.name}")
    for table in MULTIQC_TABLES:
        mine = (tmp_path / "report_ours" / "multiqc_data" / table).read_text()
        theirs = (tmp_path / "report_samtools" / "multiqc_data" / table).read_text()
        assert mine == theirs, table
    general = (tmp_path / "report_ours" / "multiqc_data" / MULTIQC_TABLES[0]).read_text()
    # one row per real file (and the header): every sample was found and none merged
    assert len(general.splitlines()) == len(REAL_FILES) + 1
    # The CRAM's stats say what samtools' say but for the command line; MultiQC ignores it.
    cram = result.samples["samtools_mpileup.1.cram"]
    assert (ours / f"{cram}.stats").read_text().splitlines()[3:] == (
        samtools / f"{cram}.stats"
    ).read_text().splitlines()[3:]


def test_the_multiqc_folder_asset_writes_every_partition(tmp_path: Path, instance):
    settings = settings_for(REAL_DATA, tmp_path / "reads.sqlite")
    keys = ["umitools_paired.bam", "pysam_example_btag.sam"]
    for key in keys:
        materialize_partition(settings, key, instance)
    folder = tmp_path / "multiqc"
    result = dg.materialize(
        [build_multiqc_asset(settings)],
        instance=instance,
        resources=ingest_resources(settings),
        run_config={"ops": {"multiqc_folder": {"config": {"folder": str(folder)}}}},
    )
    metadata = result.asset_materializations_for_node("multiqc_folder")[0].metadata
    assert metadata["samples"].value == 2 and metadata["written"].value == 2
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(
        [MANIFEST]
        + [f"{sample}{suffix}" for sample in ("pysam_example_btag_sam", "umitools_paired_bam")
           for suffix in (".flagstat", ".idxstats", ".stats")]
    )  # fmt: skip
    assert (folder / "umitools_paired_bam.stats").read_text() == pysam.stats(
        str(REAL_DATA / "umitools_paired.bam")
    )
