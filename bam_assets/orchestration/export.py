"""``samtools view`` over a stored partition: the records that overlap regions and pass filters,
counted or written as SAM, BAM or CRAM with the stored header.

Usable without the CLI::

    store = StoreResource(settings=StoreSettings(database="data/bam_assets.sqlite"))
    export(store, "run7/sample.bam", ["chr1:100000-200000"], "chr1.bam")
    count(store, "run7/sample.bam", filters=ReadFilters(exclude_flags=parse_flags("DUP")))

Regions are read against the partition's header (``model.regions``); the store selects the records
in file order (``storage.selection``); htslib writes them (``reading.export``).
"""

import os
from collections.abc import Sequence

from bam_assets.model.regions import parse_regions
from bam_assets.model.sam_header import reference_names
from bam_assets.model.selection import NO_FILTERS, ReadFilters, Selection
from bam_assets.orchestration.resources import StoreResource
from bam_assets.reading.export import output_format, write_alignments
from bam_assets.storage.store import StoreSession


def selection_for(
    session: StoreSession, key: str, regions: Sequence[str], filters: ReadFilters
) -> Selection:
    """``regions`` (samtools' syntax) read against partition ``key``'s @SQ names, with
    ``filters``; raises ``RegionError`` for a region that names no reference or range."""
    names = reference_names(session.header_text(key))
    return Selection(parse_regions(regions, names), filters)


def count(
    store: StoreResource,
    key: str,
    regions: Sequence[str] = (),
    filters: ReadFilters = NO_FILTERS,
) -> int:
    """``samtools view -c FILE REGION…``: the records of partition ``key`` that overlap any of
    ``regions`` (all when empty) and pass ``filters``."""
    with store.session(read_only=True, all_cpus=True) as session:
        return session.count_reads(key, selection_for(session, key, regions, filters))


def export(
    store: StoreResource,
    key: str,
    regions: Sequence[str] = (),
    output: str | os.PathLike | None = None,
    *,
    filters: ReadFilters = NO_FILTERS,
    file_format: str | None = None,
    with_header: bool = False,
    header_only: bool = False,
    reference: str | None = None,
    threads: int = 0,
) -> int:
    """``samtools view [-h|-H] [-o output] [-O format] FILE REGION…`` for partition ``key``:
    writes the selected records, each once, in file order, to ``output`` (standard output when
    None) and returns how many.

    The format is ``file_format`` (``sam``, ``bam``, ``cram``), else the one ``output``'s
    extension names, else SAM; CRAM needs ``reference``. Every option is checked before anything
    is written, and an output file appears only whole.
    """
    chosen_format = output_format(output, file_format)
    with store.session(read_only=True, all_cpus=True) as session:
        selection = selection_for(session, key, regions, filters)
        batches = () if header_only else session.iter_sam_lines(key, selection)
        return write_alignments(
            output,
            chosen_format,
            session.header_text(key),
            (lines.to_pylist() for lines in batches),
            with_header=with_header or header_only,
            reference=reference,
            threads=threads,
        )
