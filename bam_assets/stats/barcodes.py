"""``samtools stats`` barcode sections (BCC/QTQ, CRC/CYQ, OXC/BZQ, RXC/QXQ): stats.c,
collect_barcode_stats on original first fragments."""

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bam_assets.model.sam import PHRED_OFFSET
from bam_assets.model.tables import TableNames
from bam_assets.stats.base_counts import string_parts
from bam_assets.stats.records import records_sql

# stats.c, init_barcode_tags: (barcode tag, quality tag) pairs.
BARCODE_TAGS = (("BC", "QT"), ("CR", "CY"), ("OX", "BZ"), ("RX", "QX"))
_QUALITY_VALUES = 257  # stats->nquals

# collect_barcode_stats runs on original first fragments with SEQ (READ_ORDER_FIRST: unpaired, or
# READ1 without READ2). bam_aux_get finds a tag's first occurrence; bam_aux2Z gives only Z (and H)
# values; an empty barcode counts as none. One scan extracts the eight tags.
_BARCODE_SQL = """
    WITH r AS (
        SELECT rec_no, {extracts}
        FROM ({records})
        WHERE NOT is_secondary AND NOT is_supplementary AND seq_len > 0 AND read_order = 1
              AND ({any_tag})
    )
    SELECT rec_no, {values} FROM r
"""


def _barcode_sql(tables: TableNames) -> str:
    extracts, values = [], []
    for tag, quality_tag in BARCODE_TAGS:
        for name in (tag, quality_tag):
            extracts.append(
                f"regexp_extract(tags, '(?:^|\\t){name}:([A-Za-z]):([^\\t]*)', "
                f"['type', 'value']) AS {name}"
            )
        values.append(
            f"CASE WHEN {tag}.type IN ('Z', 'H') AND {tag}.value <> '' THEN {tag}.value END "
            f"AS {tag}_value"
        )
        values.append(
            f"CASE WHEN {quality_tag}.type IN ('Z', 'H') THEN {quality_tag}.value END "
            f"AS {tag}_quality"
        )
    return _BARCODE_SQL.format(
        records=records_sql(tables),
        extracts=", ".join(extracts),
        values=", ".join(values),
        any_tag=" OR ".join(f"contains(tags, '{tag}:')" for tag, _ in BARCODE_TAGS),
    )


_BARCODE_SLOT = np.full(256, 5, np.int64)  # A C G T N -> 0..4, anything else 5
for _slot, _base in enumerate("ACGTN"):
    _BARCODE_SLOT[ord(_base)] = _slot


def barcode_lines(connection: duckdb.DuckDBPyConnection, tables: TableNames, key: str) -> list[str]:
    """The barcode sections as output_stats prints them (none when no record has the tags).

    The first barcode in file order fixes the length (longer ones are skipped); the first
    non-ACGTN character seen fixes the separator's position (a record with one elsewhere is
    counted up to it and its quality skipped). Given those two, a barcode's counts depend on its
    text only, so each distinct (barcode, quality) pair is counted once, weighted.
    """
    table = connection.sql(_barcode_sql(tables), params={"key": key}).to_arrow_table()
    lines = []
    for tag, quality_tag in BARCODE_TAGS:
        rows = table.filter(pc.is_valid(table[f"{tag}_value"])).sort_by("rec_no")
        if rows.num_rows == 0:
            continue
        values = rows[f"{tag}_value"]
        length = len(values[0].as_py().encode())
        short = rows.filter(pc.less_equal(pc.binary_length(values), length))
        odd = short.filter(pc.match_substring_regex(short[f"{tag}_value"], "[^ACGTN]"))
        separator = -1
        if odd.num_rows:
            first = odd[f"{tag}_value"][0].as_py()
            separator = next(i for i, base in enumerate(first) if base not in "ACGTN")
        distinct = (
            short.select([f"{tag}_value", f"{tag}_quality", "rec_no"])
            .rename_columns(["value", "quality", "rec_no"])
            .group_by(["value", "quality"], use_threads=False)
            .aggregate([("rec_no", "count")])
            .rename_columns(["value", "quality", "n"])
        )
        content, qualities = _barcode_counts(distinct, length, separator)
        used = np.flatnonzero(qualities.sum(axis=0))
        max_quality = int(used.max()) if len(used) else -1
        lines.append(
            f"# ACGT content per cycle for barcodes. Use `grep ^{tag}C | cut -f 2-` to extract "
            "this part. The columns are: cycle; A,C,G,T base counts as a percentage of all "
            "A/C/G/T bases [%]; and N counts as a percentage of all A/C/G/T bases [%]"
        )
        for i in range(length):
            if i == separator:
                continue
            part, cycle = _part_and_cycle(i, separator)
            a, c, g, t, n = (int(x) for x in content[i])
            total = a + c + g + t
            if total:
                lines.append(
                    f"{tag}C{part}\t{cycle}\t"
                    + "\t".join(f"{100.0 * v / total:.2f}" for v in (a, c, g, t, n))
                )
        lines.append(
            f"# Barcode Qualities. Use `grep ^{quality_tag}Q | cut -f 2-` to extract this part."
        )
        lines.append(
            "# Columns correspond to qualities and rows to barcode cycles. First column is the "
            "cycle number."
        )
        for i in range(length):
            if i == separator:
                continue
            part, cycle = _part_and_cycle(i, separator)
            lines.append(
                f"{quality_tag}Q{part}\t{cycle}"
                + "".join(f"\t{qualities[i, q]}" for q in range(max_quality + 1))
            )
    return lines


def _part_and_cycle(i: int, separator: int) -> tuple[int, int]:
    """Rows are split into part 1 and part 2 around the separator."""
    if separator < 0 or i < separator:
        return 1, i + 1
    return 2, i - separator


def _barcode_counts(
    distinct: pa.Table, length: int, separator: int
) -> tuple[np.ndarray, np.ndarray]:
    """collect_barcode_stats over distinct (value, quality, n) rows, one barcode length at a time.

    A barcode is counted base by base (A, C, G, T, N) up to its first other character that is not
    at the separator position (C breaks out of the loop there and skips the quality); qualities
    (Phred+33, values 0..256) only for barcodes without such an error whose quality string has
    the same length.
    """
    content = np.zeros((length, 5), np.int64)
    qualities = np.zeros((length, _QUALITY_VALUES), np.int64)
    if distinct.num_rows == 0:
        return content, qualities
    value_offsets, value_data = string_parts(distinct.column("value").combine_chunks())
    quality_column = distinct.column("quality").combine_chunks()
    quality_offsets, quality_data = string_parts(quality_column)
    quality_null = quality_column.is_null().to_numpy(zero_copy_only=False)
    weight = distinct.column("n").to_numpy().astype(np.int64)
    value_length, quality_length = np.diff(value_offsets), np.diff(quality_offsets)
    for size in np.unique(value_length).tolist():
        rows = value_length == size
        k = int(rows.sum())
        slots = _BARCODE_SLOT[value_data[np.repeat(rows, value_length)].reshape(k, size)]
        columns = np.arange(size)
        bad = (slots == 5) & (columns != separator)[None, :]
        error = np.where(bad.any(axis=1), bad.argmax(axis=1), size)
        counted = (columns[None, :] < error[:, None]) & (slots < 5)
        weights = np.broadcast_to(weight[rows][:, None], (k, size))
        content[:size] += (
            np.bincount(
                (columns[None, :] * 5 + slots)[counted],
                weights=weights[counted],
                minlength=size * 5,
            )
            .round()
            .astype(np.int64)
            .reshape(size, 5)
        )
        usable = rows & ~quality_null & (quality_length == size)
        usable_here = usable[rows] & (error == size)
        if not usable_here.any():
            continue
        quality_rows = np.zeros(len(rows), bool)
        quality_rows[np.flatnonzero(rows)[usable_here]] = True
        values = quality_data[np.repeat(quality_rows, quality_length)].reshape(-1, size)
        values = values.astype(np.int64) - PHRED_OFFSET
        quality_weights = np.broadcast_to(weight[quality_rows][:, None], values.shape)
        valid = (values >= 0) & (values < _QUALITY_VALUES)
        qualities[:size] += (
            np.bincount(
                (columns[None, :] * _QUALITY_VALUES + values)[valid],
                weights=quality_weights[valid],
                minlength=size * _QUALITY_VALUES,
            )
            .round()
            .astype(np.int64)
            .reshape(size, _QUALITY_VALUES)
        )
    return content, qualities
