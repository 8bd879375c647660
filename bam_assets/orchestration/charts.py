"""What each chart of the UI shows, computed from the stored statistics: equal-width bins,
averages weighted by bases, overflow buckets with their own label, thousands separators; and
Markdown tables. ``plots`` draws these; the tests compare both with the tables they come from."""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bam_assets.stats.flagstat import Flagstat
from bam_assets.stats.samtools_text import flagstat_percent


def number(value: float, decimals: int = 0) -> str:
    """A number as a person reads it: ``1,000,000``, ``34.1`` (never ``1e+06``)."""
    return f"{value:,.{decimals}f}"


def nice_width(span: int, max_bins: int) -> int:
    """The smallest bin width of 1, 2 or 5 times a power of ten that covers ``span`` values in
    at most ``max_bins`` bins."""
    needed = max(1, math.ceil(span / max_bins))
    magnitude = 10 ** (len(str(needed)) - 1)
    for step in (1, 2, 5, 10):
        if step * magnitude >= needed:
            return step * magnitude
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Bins:
    """Counts of integer values in equal-width bins ``[edges[i], edges[i + 1])``, one list per
    series, and an overflow bucket (values ``>= overflow_from``) kept apart."""

    edges: list[int]
    counts: dict[str, list[int]]
    overflow_from: int | None = None
    overflow: dict[str, int] | None = None

    @property
    def width(self) -> int:
        return self.edges[1] - self.edges[0] if len(self.edges) > 1 else 1

    def labels(self) -> list[str]:
        """One label per bin (``150``, or ``100–199``), then ``≥ 8,000`` for the overflow."""
        labels = [
            number(low) if high - low == 1 else f"{number(low)}–{number(high - 1)}"
            for low, high in zip(self.edges[:-1], self.edges[1:], strict=True)
        ]
        if self.overflow_from is not None:
            labels.append(f"≥ {number(self.overflow_from)}")
        return labels


def equal_width_bins(
    rows: Iterable[Sequence[int]],
    series: Sequence[str],
    max_bins: int = 60,
    overflow_from: int | None = None,
) -> Bins:
    """Bins rows of (value, count of series 1, count of series 2, …) by value.

    Values ``>= overflow_from`` (samtools' capped bucket, e.g. insert sizes of 8000 and more) go
    to the overflow bucket; the others into at most ``max_bins`` bins of one width.
    """
    rows = list(rows)
    regular = [r for r in rows if overflow_from is None or r[0] < overflow_from]
    overflow = None
    if overflow_from is not None:
        overflow = {name: 0 for name in series}
        for row in rows:
            if row[0] >= overflow_from:
                for i, name in enumerate(series):
                    overflow[name] += int(row[i + 1])
    if not regular:
        return Bins([], {name: [] for name in series}, overflow_from, overflow)
    low = min(int(r[0]) for r in regular)
    high = max(int(r[0]) for r in regular)
    width = nice_width(high - low + 1, max_bins)
    start = low // width * width
    count = high // width - start // width + 1
    edges = [start + i * width for i in range(count + 1)]
    counts = {name: [0] * count for name in series}
    for row in regular:
        index = (int(row[0]) - start) // width
        for i, name in enumerate(series):
            counts[name][index] += int(row[i + 1])
    return Bins(edges, counts, overflow_from, overflow)


@dataclass(frozen=True)
class CyclePoint:
    """Cycles ``first..last`` of one fragment merged into one point: the mean quality of their
    bases is the quality sum over the base count (never an average of averages)."""

    first: int
    last: int
    bases: int
    quality_sum: int

    @property
    def mean_quality(self) -> float:
        return self.quality_sum / self.bases

    @property
    def middle(self) -> float:
        return (self.first + self.last) / 2


def mean_quality_per_cycle(
    rows: Iterable[Sequence], max_points: int = 200
) -> dict[str, list[CyclePoint]]:
    """Rows of (fragment, cycle, bases, quality sum) as points per fragment ('first', 'last');
    cycles are merged into equal-width groups when there are more than ``max_points``."""
    rows = [r for r in rows if r[2]]
    if not rows:
        return {}
    last_cycle = max(int(r[1]) for r in rows)
    width = nice_width(last_cycle, max_points)
    merged: dict[str, dict[int, list[int]]] = {}
    for fragment, cycle, bases, quality_sum, *_ in rows:
        group = merged.setdefault(fragment, {}).setdefault((int(cycle) - 1) // width, [0, 0])
        group[0] += int(bases)
        group[1] += int(quality_sum)
    return {
        fragment: [
            CyclePoint(g * width + 1, min((g + 1) * width, last_cycle), bases, quality_sum)
            for g, (bases, quality_sum) in sorted(groups.items())
        ]
        for fragment, groups in sorted(merged.items())
    }


@dataclass(frozen=True)
class ContigTrack:
    """Mean depth along one contig in equal stretches ``starts[i]..ends[i]`` (1-based,
    inclusive), placed at ``offset`` on an axis where the contigs follow each other."""

    contig: str
    offset: int
    length: int
    starts: list[int]
    ends: list[int]
    mean_depths: list[float]


def coverage_tracks(
    contigs: Sequence[tuple[str, int]],
    windows: Iterable[Sequence],
    window_size: int,
    max_contigs: int = 25,
    max_points: int = 2000,
) -> tuple[list[ContigTrack], int]:
    """The contigs with coverage (header order; at most ``max_contigs``, those with the most
    aligned bases) from the coverage windows (contig, start, end, reads, bases, mean depth), and
    how many contigs with coverage were left out.

    Windows without reads count as depth 0. With more than ``max_points`` windows in all, runs of
    windows are merged: a run's mean depth is its aligned bases over its length.
    """
    bases: dict[str, dict[int, int]] = {}
    for contig, start, _end, _reads, aligned, *_ in windows:
        bases.setdefault(contig, {})[(int(start) - 1) // window_size] = int(aligned)
    lengths = dict(contigs)
    covered = [name for name, _ in contigs if name in bases]
    covered += sorted(name for name in bases if name not in lengths)  # not in the header
    ranked = sorted(covered, key=lambda name: -sum(bases[name].values()))[:max_contigs]
    kept = [name for name in covered if name in ranked]

    def length_of(name: str) -> int:
        return max(lengths.get(name, 0), (max(bases[name]) + 1) * window_size)

    total_windows = sum(math.ceil(length_of(name) / window_size) for name in kept)
    group = nice_width(total_windows, max_points)  # windows per point
    tracks, offset = [], 0
    for name in kept:
        length = lengths.get(name) or length_of(name)
        starts, ends, depths = [], [], []
        for first_window in range(0, math.ceil(length / window_size), group):
            start = first_window * window_size + 1
            end = min((first_window + group) * window_size, length)
            aligned = sum(bases[name].get(w, 0) for w in range(first_window, first_window + group))
            starts.append(start)
            ends.append(end)
            depths.append(aligned / (end - start + 1))
        tracks.append(ContigTrack(name, offset, length, starts, ends, depths))
        offset += length
    return tracks, len(covered) - len(kept)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def flagstat_markdown(stats: Flagstat) -> str:
    totals = {
        "mapped": "total",
        "primary_mapped": "primary",
        "properly_paired": "paired",
        "singletons": "paired",
    }
    rows = []
    for name, passed, failed in stats.rows():
        share = ""
        if name in totals:
            base = getattr(stats, totals[name])
            share = f"{flagstat_percent(passed, base[0])} : {flagstat_percent(failed, base[1])}"
        rows.append((name.replace("_", " "), f"{passed:,}", f"{failed:,}", share))
    return markdown_table(("category", "QC-passed", "QC-failed", "%"), rows)
