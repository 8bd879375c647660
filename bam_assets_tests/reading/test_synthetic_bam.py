"""The generator of synthetic files is a command a user can run (and ask for help)."""

import subprocess
import sys
from pathlib import Path

import pysam


def test_the_generator_runs_as_a_module_and_has_help(tmp_path: Path):
    module = ["-m", "bam_assets.reading.synthetic_bam"]
    help_text = subprocess.run(
        [sys.executable, *module, "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--reads" in help_text and "--seed" in help_text
    target = tmp_path / "made.bam"
    subprocess.run([sys.executable, *module, str(target), "--reads", "200"], check=True)
    assert int(pysam.view("-c", str(target)).strip()) >= 200
