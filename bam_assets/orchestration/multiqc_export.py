"""A folder MultiQC reads: for every stored partition, what samtools would have written with
``samtools stats``, ``samtools flagstat`` and ``samtools idxstats``.

MultiQC (1.35) recognises a stats file by its first line ("This file was produced by samtools
stats") and reads its SN and IS lines, a flagstat file by its text, and an idxstats file only by a
name containing ``idxstat``; it names samples after the files, cut at the first ``.bam``, ``.sam``,
``.txt``, ``_counts``… it finds. So each partition becomes ``<sample>.stats``,
``<sample>.flagstat`` and ``<sample>.idxstats``, where the sample is the partition key with every
character other than letters, digits, ``-`` and ``_`` replaced by ``_`` (``lane1/x.bam`` ->
``lane1_x_bam``), made unique.

The complete stats text costs about three times the ingest, so files are rewritten only for
partitions ingested since they were written (a manifest in the folder remembers which ingest each
sample shows); samples of partitions no longer stored are removed.
"""

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bam_assets.model.sam_bytes import bytes_from_text
from bam_assets.stats.flagstat import flagstat
from bam_assets.stats.idxstats import idxstats
from bam_assets.stats.samtools_stats import stats_text
from bam_assets.stats.samtools_text import flagstat_text, idxstats_text
from bam_assets.storage.store import StoredFile, StoreSession

MANIFEST = ".bam_assets_export.json"
SUFFIXES = (".stats", ".flagstat", ".idxstats")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


@dataclass
class ExportResult:
    """Samples written, kept as they were, and removed, by partition key."""

    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    samples: dict[str, str] = field(default_factory=dict)  # key -> sample name


def sample_names(keys: Sequence[str]) -> dict[str, str]:
    """A MultiQC sample name for each key: unsafe characters replaced, duplicates numbered."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for key in sorted(keys):
        base = _UNSAFE.sub("_", key) or "_"
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}_{n}"
        taken.add(name)
        names[key] = name
    return names


def write_partition_files(
    session: StoreSession,
    stored: StoredFile,
    folder: Path,
    sample: str,
    reference_lengths: dict[str, int] | None = None,
) -> None:
    """``<sample>.stats``, ``.flagstat`` and ``.idxstats`` of one partition."""
    connection, tables, key = session.connection, session.tables, stored.key
    file_format, references = session.file_row(key)[0], session.references(key)
    texts = {
        ".stats": stats_text(connection, tables, key, stored.path),
        ".flagstat": flagstat_text(flagstat(connection, tables, key)),
        ".idxstats": idxstats_text(
            idxstats(connection, tables, key, file_format, references, reference_lengths)
        ),
    }
    for suffix, text in texts.items():
        target = folder / f"{sample}{suffix}"
        partial = target.with_name(target.name + ".partial")
        partial.write_bytes(bytes_from_text(text))  # contig names may hold escaped bytes
        partial.replace(target)


def export_multiqc_folder(
    session: StoreSession,
    folder: Path,
    reference_lengths: dict[str, int] | None = None,
    keys: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExportResult:
    """Brings ``folder`` up to date with the stored partitions (or only ``keys``)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = folder / MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    stored = {f.key: f for f in session.list_files()}
    wanted = stored if keys is None else {key: stored[key] for key in keys}
    names = sample_names(list(stored))
    result = ExportResult(samples={key: names[key] for key in wanted})
    for sample, entry in list(manifest.items()):
        if entry["key"] not in stored or names[entry["key"]] != sample:
            for suffix in SUFFIXES:
                (folder / f"{sample}{suffix}").unlink(missing_ok=True)
            del manifest[sample]
            result.removed.append(entry["key"])
    for key, file in sorted(wanted.items()):
        sample = names[key]
        ingested = file.ingested_at.isoformat()
        complete = all((folder / f"{sample}{suffix}").exists() for suffix in SUFFIXES)
        if complete and manifest.get(sample, {}).get("ingested_at") == ingested:
            result.kept.append(key)
            continue
        write_partition_files(session, file, folder, sample, reference_lengths)
        manifest[sample] = {"key": key, "ingested_at": ingested}
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
        result.written.append(key)
        if progress is not None:
            progress(f"{key}: wrote {sample}.stats, .flagstat, .idxstats")
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return result
