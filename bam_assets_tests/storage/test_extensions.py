"""The extension binaries: the digests the store trusts are binaries DuckDB signed, and anything
else must pass DuckDB's own signature check before it is loaded."""

import hashlib

import duckdb
import pytest

from bam_assets.storage.errors import StoreConfigError
from bam_assets.storage.extensions import (
    EXTENSIONS,
    OFFLINE,
    SIGNED_DIGESTS,
    VERIFIED_LOADING,
    check_signature,
    extension_path,
    load_extensions,
)


def _digest(path) -> str:
    with path.open("rb") as binary:
        return hashlib.file_digest(binary, "sha256").hexdigest()


@pytest.mark.parametrize("name", sorted(EXTENSIONS))
def test_a_trusted_digest_is_a_binary_duckdb_signed(name):
    path = extension_path(name)
    if _digest(path) not in SIGNED_DIGESTS[name]:
        pytest.skip(f"{path} is another platform's binary; DuckDB checks it at every load")
    connection = duckdb.connect(":memory:", config=OFFLINE)  # DuckDB's own signature check on
    connection.execute(f"LOAD '{path}'")
    assert connection.execute(
        "SELECT loaded FROM duckdb_extensions() WHERE extension_name = ?", [name]
    ).fetchone() == (True,)


def test_a_binary_with_another_digest_must_pass_duckdbs_check(tmp_path):
    original = extension_path("ducklake")
    changed = tmp_path / "ducklake.duckdb_extension"
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF
    changed.write_bytes(bytes(data))
    with pytest.raises(StoreConfigError, match="DuckDB refused the extension"):
        check_signature("ducklake", changed)
    check_signature("ducklake", original)  # trusted, or signed: no error


def test_the_store_loads_each_extension_after_the_check():
    connection = duckdb.connect(":memory:", config={**OFFLINE, **VERIFIED_LOADING})
    load_extensions(connection, ("sqlite_scanner", "ducklake"))
    loaded = connection.execute(
        "SELECT extension_name FROM duckdb_extensions() WHERE loaded ORDER BY 1"
    ).fetchall()
    assert ("ducklake",) in loaded and ("sqlite_scanner",) in loaded
