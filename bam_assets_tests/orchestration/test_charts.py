"""Every chart shows its table: values, bin edges and labels are checked against the stored
distribution tables of real files, and the drawn figures against the chart data."""

import base64
from pathlib import Path

import pytest
from PIL import Image

from bam_assets.model.sam_header import header_contigs
from bam_assets.orchestration import plots
from bam_assets.orchestration.charts import (
    coverage_tracks,
    equal_width_bins,
    mean_quality_per_cycle,
    nice_width,
    number,
)
from bam_assets.orchestration.summary_assets import distribution_pictures
from bam_assets.stats.distributions import distribution
from bam_assets_tests.helpers import REAL_FILES, copy_store, write_distributions, write_session

WINDOW = 100_000
CHARTED = REAL_FILES


@pytest.fixture(scope="module")
def tables(real_database, tmp_path_factory) -> dict[str, dict[str, list[tuple]]]:
    """The stored distribution tables of the charted files, by file and table."""
    copy = tmp_path_factory.mktemp("charts") / "copy.sqlite"
    copy_store(real_database, copy)
    out: dict[str, dict[str, list[tuple]]] = {}
    with write_session(copy) as session:
        for key in CHARTED:
            write_distributions(session, key, WINDOW)
            out[key] = {
                name: distribution(session.connection, session.tables, key, name)
                for name in (
                    "quality_by_cycle",
                    "insert_size",
                    "gc_content",
                    "read_length",
                    "mapq",
                    "coverage_window",
                )
            }
            out[key]["header"] = session.header_text(key)
    return out


def test_numbers_have_thousands_separators_and_no_exponent():
    assert number(1_000_000) == "1,000,000"
    assert number(34.06, 1) == "34.1"
    assert [nice_width(span, 60) for span in (10, 60, 61, 150, 7000, 100_000)] == [
        1, 1, 2, 5, 200, 2000,
    ]  # fmt: skip


def test_equal_width_bins_and_overflow_bucket():
    rows = [(3, 1, 0), (4, 2, 1), (12, 5, 0), (150, 7, 2), (8000, 40, 3)]
    bins = equal_width_bins(rows, ("inward", "outward"), max_bins=30, overflow_from=8000)
    widths = {high - low for low, high in zip(bins.edges[:-1], bins.edges[1:], strict=True)}
    assert widths == {5} and bins.edges[0] == 0 and bins.edges[-1] == 155
    assert bins.counts["inward"][0] == 3 and bins.counts["inward"][2] == 5
    assert bins.counts["inward"][-1] == 7 and sum(bins.counts["outward"]) == 3
    assert bins.overflow == {"inward": 40, "outward": 3}
    assert bins.labels()[0] == "0–4" and bins.labels()[-1] == "≥ 8,000"


@pytest.mark.parametrize("key", CHARTED)
def test_quality_per_cycle_is_weighted_by_bases_per_fragment(tables, key):
    rows = tables[key]["quality_by_cycle"]
    for max_points in (1000, 7):
        lines = mean_quality_per_cycle([r[:4] for r in rows], max_points=max_points)
        for fragment, points in lines.items():
            assert len(points) <= max_points
            for point in points:
                mine = [r for r in rows if r[0] == fragment and point.first <= r[1] <= point.last]
                assert point.bases == sum(r[2] for r in mine)
                assert point.mean_quality == sum(r[3] for r in mine) / sum(r[2] for r in mine)
            figure = plots.quality_per_cycle_figure(lines)
            drawn = {line.get_label(): line for line in figure.axes[0].get_lines()}
            line = drawn[f"{fragment} fragments"]
            assert list(line.get_ydata()) == [p.mean_quality for p in points]
            assert list(line.get_xdata()) == [p.middle for p in points]
    # Mean qualities stay within the range of the per-cycle means (never sums of means).
    per_cycle = [r[3] / r[2] for r in rows]
    merged = mean_quality_per_cycle([r[:4] for r in rows], max_points=7)
    for points in merged.values():
        assert all(min(per_cycle) <= p.mean_quality <= max(per_cycle) for p in points)


@pytest.mark.parametrize("key", CHARTED)
def test_histograms_draw_their_tables(tables, key):
    insert_rows = tables[key]["insert_size"]
    bins = equal_width_bins(
        [r[:4] for r in insert_rows], ("inward", "outward", "other"), overflow_from=8000
    )
    for i, name in enumerate(("inward", "outward", "other")):
        for k, (low, high) in enumerate(zip(bins.edges[:-1], bins.edges[1:], strict=True)):
            expected = sum(r[i + 1] for r in insert_rows if low <= r[0] < high and r[0] < 8000)
            assert bins.counts[name][k] == expected
        assert bins.overflow[name] == sum(r[i + 1] for r in insert_rows if r[0] >= 8000)
    figure = plots.bins_figure(bins, "t", "x", "y")
    axes = figure.axes[0]
    plots.png(figure)  # lays out the tick labels
    bars = axes.patches
    labels = bins.labels()
    assert len(bars) == 3 * len(labels)
    stacked = [sum(bar.get_height() for bar in bars[k :: len(labels)]) for k in range(len(labels))]
    totals = [sum(bins.counts[n][k] for n in bins.counts) for k in range(len(bins.edges) - 1)]
    assert stacked == totals + [sum(bins.overflow.values())]
    assert axes.get_xticklabels()[-1].get_text() == "≥ 8,000"

    length_rows = tables[key]["read_length"]
    lengths = equal_width_bins([r[:2] for r in length_rows], ("reads",))
    assert sum(lengths.counts["reads"]) == sum(r[1] for r in length_rows)
    assert len(lengths.counts["reads"]) <= 60
    assert all("e+" not in label for label in lengths.labels())


@pytest.mark.parametrize("key", CHARTED)
def test_gc_content_draws_first_and_last_fragments_apart(tables, key):
    rows = tables[key]["gc_content"]
    figure = plots.gc_content_figure(rows)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    for column, fragment in ((1, "first"), (2, "last")):
        by_percent = {r[0]: r[column] for r in rows}
        if not any(by_percent.values()):
            assert f"{fragment} fragments" not in lines
            continue
        drawn = lines[f"{fragment} fragments"]
        assert list(drawn.get_xdata()) == list(range(101))
        assert list(drawn.get_ydata()) == [by_percent.get(p, 0) for p in range(101)]


@pytest.mark.parametrize("key", CHARTED)
def test_coverage_tracks_average_the_aligned_bases(tables, key):
    windows = tables[key]["coverage_window"]
    contigs = header_contigs(tables[key]["header"])
    covered = [c for c, _ in contigs if c in {w[0] for w in windows}]
    bases = {c: sum(w[4] for w in windows if w[0] == c) for c in covered}
    busiest = set(sorted(covered, key=lambda c: -bases[c])[:25])
    for max_points in (100_000, 50):
        tracks, left_out = coverage_tracks(contigs, windows, WINDOW, max_points=max_points)
        # at most 25 contigs, those with the most aligned bases, in header order
        assert [t.contig for t in tracks] == [c for c in covered if c in busiest]
        assert left_out == len(covered) - len(tracks)
        for track in tracks:
            for start, end, depth in zip(track.starts, track.ends, track.mean_depths, strict=True):
                inside = [w for w in windows if w[0] == track.contig and start <= w[1] <= end]
                assert depth == pytest.approx(sum(w[4] for w in inside) / (end - start + 1))


@pytest.mark.parametrize("key", CHARTED)
def test_every_picture_is_an_800_pixel_png_under_100_kb(tables, tmp_path: Path, key):
    pictures = distribution_pictures(lambda name: tables[key][name], tables[key]["header"], WINDOW)
    assert set(pictures) == {
        "quality_per_cycle",
        "insert_size",
        "gc_content",
        "read_length",
        "mapq",
        "coverage",
    }
    for name, value in pictures.items():
        text = value.value
        assert text.startswith("![") and "](data:image/png;base64," in text
        data = base64.b64decode(text.split("base64,", 1)[1].split(")", 1)[0])
        assert len(data) < 100_000, name
        (tmp_path / f"{name}.png").write_bytes(data)
        with Image.open(tmp_path / f"{name}.png") as image:
            assert image.size[0] == 800, name
