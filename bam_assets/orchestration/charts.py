"""Markdown for the Dagster UI: tables and text bar charts of small result sets."""

from collections.abc import Sequence

from bam_assets.stats.flagstat import Flagstat
from bam_assets.stats.samtools_text import flagstat_percent


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def bar_chart(points: Sequence[tuple[object, float]], width: int = 40, bars: int = 30) -> str:
    """A Markdown text bar chart; more than ``bars`` points are merged into equal groups."""
    if not points:
        return "_no data_"
    if len(points) > bars:
        size = -(-len(points) // bars)
        points = [
            (f"{group[0][0]}–{group[-1][0]}", sum(value for _, value in group))
            for group in (points[i : i + size] for i in range(0, len(points), size))
        ]
    peak = max(value for _, value in points) or 1
    label_width = max(len(str(label)) for label, _ in points)
    lines = [
        f"{str(label):>{label_width}} | {'█' * round(width * value / peak):<{width}} {value:,.6g}"
        for label, value in points
    ]
    return "```text\n" + "\n".join(lines) + "\n```"


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
