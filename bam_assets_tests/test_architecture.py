"""The layers hold: the import contracts of pyproject.toml, one place that opens DuckDB, one
chunk-size default."""

import re
import subprocess
import sys
from pathlib import Path

from bam_assets.orchestration.project_paths import PROJECT_DIR
from bam_assets.orchestration.resources import AlignmentSources
from bam_assets.orchestration.settings import IngestSettings, ReadingSettings
from bam_assets.reading.options import DEFAULT_CHUNK_SIZE, ReaderOptions

VENV_BIN = Path(sys.executable).parent


def git_grep(*arguments: str) -> list[tuple[str, str]]:
    """(path, line) of every match in the project's files, untracked ones included (ignored ones,
    such as the virtualenv, are not)."""
    result = subprocess.run(
        ["git", "grep", "-n", "--untracked", *arguments],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: no match
    matches = []
    for line in result.stdout.splitlines():
        path, _, text = line.split(":", 2)
        matches.append((path, text))
    return matches


def test_the_import_contracts_hold():
    """``lint-imports`` checks the layers and the forbidden imports declared in pyproject.toml."""
    result = subprocess.run(
        [str(VENV_BIN / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout, result.stdout


def test_only_storage_opens_a_duckdb_file():
    """``duckdb.connect`` appears in the package under storage/ only. Tests open the file directly
    to check what was stored, and the benchmarks' peers write their own tables and the harness
    measures every workload's file."""
    matches = git_grep("-F", "duckdb.connect", "--", "*.py")
    assert any(path.startswith("bam_assets/storage/") for path, _ in matches)
    elsewhere = [
        (path, text)
        for path, text in matches
        if not path.startswith(("bam_assets/storage/", "bam_assets_tests/", "benchmarks/"))
    ]
    assert elsewhere == []


# A number written out in code: not part of a name, not the ``gt=0`` bound of a pydantic field.
_LITERAL_NUMBER = re.compile(r"(?<![\w.])(?<!gt=)(?<!ge=)\d[\d_]*(?![\w.])")


def test_the_chunk_size_default_is_declared_once():
    """Every chunk size of the package comes from ``reading.options.DEFAULT_CHUNK_SIZE``: the only
    line that mentions a chunk size beside a number is its definition."""
    with_numbers = [
        (path, text.strip())
        for path, text in git_grep("-i", "-E", "chunk[_ ]?size", "--", "bam_assets")
        if _LITERAL_NUMBER.search(text.split("#", 1)[0])
    ]
    assert with_numbers == [("bam_assets/reading/options.py", "DEFAULT_CHUNK_SIZE = 10_000")]
    assert ReaderOptions().chunk_size == DEFAULT_CHUNK_SIZE
    assert ReadingSettings().chunk_size == DEFAULT_CHUNK_SIZE
    assert IngestSettings().reading.reader_options().chunk_size == DEFAULT_CHUNK_SIZE
    assert AlignmentSources(roots=[]).reader_options().chunk_size == DEFAULT_CHUNK_SIZE
