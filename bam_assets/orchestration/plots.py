"""The pictures of the UI: matplotlib figures drawn from ``charts`` data, rendered by the Agg
backend into PNGs of 800 pixels' width (30-60 KB), and shown as Markdown images with a data URI
in the materialization metadata (Dagster's UI renders ``data:`` images; no file server, works
offline). matplotlib's own DejaVu font is used: nothing is downloaded.

matplotlib is imported when the first figure is drawn (0.5 s), not when the definitions load.
"""

import base64
import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from bam_assets.orchestration.charts import Bins, ContigTrack, CyclePoint, number

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH_INCHES, HEIGHT_INCHES, DPI = 8.0, 3.6, 100
COLORS = {
    "first": "#1f77b4",
    "last": "#d62728",
    "inward": "#2ca02c",
    "outward": "#ff7f0e",
    "other": "#9467bd",
}


def _figure(height: float = HEIGHT_INCHES) -> tuple["Figure", "Axes"]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _tick(value)))
    axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)
    return figure, axes


def _tick(value: float) -> str:
    """Axis numbers with thousands separators, decimals only where the ticks need them."""
    return number(value) if float(value).is_integer() else f"{value:,.2f}".rstrip("0")


def png(figure: "Figure") -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer)
    return buffer.getvalue()


def markdown_image(title: str, figure: "Figure", caption: str) -> str:
    """The figure as a Markdown image (PNG data URI) followed by a one-line caption."""
    encoded = base64.b64encode(png(figure)).decode()
    return f"![{title}](data:image/png;base64,{encoded})\n\n{caption}"


def quality_per_cycle_figure(lines: dict[str, list[CyclePoint]]) -> "Figure":
    """Mean base quality per cycle, first and last fragments as two lines."""
    figure, axes = _figure()
    for fragment, points in lines.items():
        axes.plot(
            [p.middle for p in points],
            [p.mean_quality for p in points],
            color=COLORS.get(fragment),
            label=f"{fragment} fragments",
            linewidth=1.4,
        )
    axes.set_xlabel("cycle")
    axes.set_ylabel("mean base quality (Phred)")
    axes.set_title("Quality per cycle")
    axes.xaxis.set_major_formatter(_thousands())
    axes.set_ylim(bottom=0)
    if lines:
        axes.legend(loc="lower left")
    return figure


def _thousands():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: _tick(value))


def bins_figure(
    bins: Bins, title: str, xlabel: str, ylabel: str, colors: dict[str, str] | None = None
) -> "Figure":
    """A histogram of equal-width bins, the series stacked in each bin; the overflow bucket,
    when there is one, is the last bar with its ``≥`` label."""
    figure, axes = _figure()
    labels = bins.labels()
    series = list(bins.counts)
    bottoms = [0] * len(labels)
    for name in series:
        heights = list(bins.counts[name])
        if bins.overflow is not None:
            heights.append(bins.overflow[name])
        axes.bar(
            range(len(heights)),
            heights,
            width=0.9,
            bottom=bottoms,
            color=(colors or COLORS).get(name, "#4c72b0"),
            label=name if len(series) > 1 else None,
        )
        bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    step = max(1, len(labels) // 12)
    ticks = list(range(0, len(labels), step))
    if bins.overflow is not None and len(labels) - 1 not in ticks:
        ticks.append(len(labels) - 1)
    axes.set_xticks(ticks, [labels[k] for k in ticks], rotation=30, ha="right")
    axes.set_xlim(-0.6, len(labels) - 0.4)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    if len(series) > 1:
        axes.legend()
    return figure


def gc_content_figure(rows: Sequence[Sequence[int]]) -> "Figure":
    """Reads per GC percent (0-100; percents without reads are 0), first and last fragments as
    two lines."""
    figure, axes = _figure()
    percents = list(range(101))
    for column, fragment in ((1, "first"), (2, "last")):
        by_percent = {int(r[0]): int(r[column]) for r in rows}
        if any(by_percent.values()):
            counts = [by_percent.get(p, 0) for p in percents]
            axes.plot(percents, counts, color=COLORS[fragment], label=f"{fragment} fragments")
    axes.set_xlim(0, 100)
    axes.set_xlabel("GC content of the read (%)")
    axes.set_ylabel("reads")
    axes.set_title("GC content")
    if rows:
        axes.legend()
    return figure


def coverage_figure(tracks: list[ContigTrack], left_out: int) -> "Figure":
    """Mean depth along each contig (contigs side by side, in header order)."""
    figure, axes = _figure()
    for i, track in enumerate(tracks):
        x = [track.offset + start for start in track.starts] + [track.offset + track.ends[-1]]
        y = track.mean_depths + track.mean_depths[-1:]
        color = COLORS["first"] if i % 2 == 0 else "#4c72b0"
        axes.step(x, y, where="post", color=color, linewidth=1)
        # A covered stretch narrower than a pixel still shows: a dot at its middle.
        covered = [k for k, depth in enumerate(track.mean_depths) if depth > 0]
        axes.plot(
            [track.offset + (track.starts[k] + track.ends[k]) / 2 for k in covered],
            [track.mean_depths[k] for k in covered],
            linestyle="none",
            marker=".",
            markersize=6,
            color=color,
        )
        if i:
            axes.axvline(track.offset, color="#999999", linewidth=0.6)
    total = sum(t.length for t in tracks) or 1
    shown = [t for t in tracks if t.length / total >= 0.03]
    axes.set_xticks([t.offset + t.length / 2 for t in shown], [t.contig for t in shown])
    axes.set_xlim(-0.01 * total, 1.01 * total)
    axes.set_ylim(bottom=0)
    axes.set_xlabel(
        "contig" + (f" ({left_out} more contigs with reads not shown)" if left_out else "")
    )
    axes.set_ylabel("mean depth")
    axes.set_title("Coverage along the contigs")
    return figure


def per_file_figure(keys: Sequence[str], panels: Sequence[tuple[str, Sequence[float]]]) -> "Figure":
    """One horizontal bar per file in each panel (reads, % mapped, …), files in the same order."""
    from matplotlib.figure import Figure

    height = max(2.5, 0.9 + 0.22 * len(keys))
    figure = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    axes_list = figure.subplots(1, len(panels), sharey=True)
    positions = list(range(len(keys)))
    for i, (axes, (title, values)) in enumerate(zip(axes_list, panels, strict=True)):
        axes.barh(positions, values, color=COLORS["first"])
        axes.set_xlim(0, max(values, default=0) * 1.05 or 1)
        axes.set_title(title, fontsize=8)
        axes.xaxis.set_major_formatter(_thousands())
        axes.tick_params(axis="x", labelsize=7, rotation=30)
        if i == 0:  # shared: the first file on top in every panel
            axes.invert_yaxis()
        axes.grid(axis="x", color="#dddddd", linewidth=0.6)
        axes.set_axisbelow(True)
    axes_list[0].set_yticks(positions, list(keys), fontsize=7)
    return figure
