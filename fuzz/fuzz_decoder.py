"""Coverage-guided differential fuzzing of the bulk BAM decoder (atheris, libFuzzer).

Every input is turned into a BAM file and read by the ingest twice, with the bulk decoder and
with htslib's formatter alone; the rows must be equal, or both reads must refuse the file
(``bam_assets_tests/differential.py`` holds the oracle and the input format). A disagreement, or
any error other than the ingest's refusal, stops the session and libFuzzer saves the input.

Run by ``run_fuzz.sh`` (``make fuzz``, ``make fuzz-ci``): with ``BAM_RECORDS_SO`` set, the C
extension built with ASan and UBSan (``build_ext.sh``) replaces the installed one, and its edges
are libFuzzer's coverage; the Python of ``bam_assets`` is instrumented by atheris as well.
"""

import importlib.machinery
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

import atheris
import pysam

_MODULE = "bam_assets.reading.bam._records"
if os.environ.get("BAM_RECORDS_SO"):  # before anything imports the decoder
    _loader = importlib.machinery.ExtensionFileLoader(_MODULE, os.environ["BAM_RECORDS_SO"])
    _spec = importlib.util.spec_from_file_location(_MODULE, _loader.path, loader=_loader)
    _module = importlib.util.module_from_spec(_spec)
    _loader.exec_module(_module)
    sys.modules[_MODULE] = _module

with atheris.instrument_imports(include=["bam_assets"]):
    from bam_assets_tests.differential import check

# htslib's own error lines for every damaged input would drown libFuzzer's
pysam.set_verbosity(0)
_FOLDER = Path(
    tempfile.mkdtemp(prefix="bam-fuzz-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None)
)


def test_one_input(data: bytes) -> None:
    check(data, _FOLDER)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
