"""Charts for the admin progress page and the owner dashboard, as PNG or SVG bytes
(no Django here).

Each chart function takes plain numbers and returns a finished image (PNG unless
``fmt="svg"``); with nothing to show it still returns a titled, labelled chart
saying "no data yet", so a new study's pages render before its first vote. Its
``figure`` attribute builds the matplotlib Figure itself, for callers (and tests)
that look at the layout rather than the pixels.

Every figure uses constrained layout, so titles, axis labels and tick labels are
placed inside the figure; charts whose labels grow with the data (one box per
subtype) grow the figure instead of shrinking or overlapping the labels.

Figures are built with ``matplotlib.figure.Figure`` rather than pyplot: pyplot
keeps every figure in a process-wide registry (a leak, and shared state between
request threads), while a bare Figure is freed with its last reference.
"""

from __future__ import annotations

import functools
import io
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import matplotlib

# A server has no display: pick the file-only backend before anything can
# import pyplot and choose an interactive one.
matplotlib.use("Agg")

from matplotlib import dates as mdates  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

NO_DATA = "no data yet"
ACCENT = "#1d5fbf"
FLAGGED = "#b3261e"
MUTED = "#555"
# One colour per group in the order the caller lists the groups (PIPAL's four
# categories, then "uncategorised"); colour-blind-safe (Okabe–Ito).
GROUP_COLORS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#999999")
# Up to this many images on one axis, each gets its name as a tick label.
MAX_NAMED_TICKS = 30
SIZE = (6.4, 3.6)  # inches; at 100 dpi a 640x360 image fits a dashboard column
DPI = 100
# A horizontal box plot gives each group this much height, plus room for the title and axis label;
# with few groups the figure keeps SIZE.
BOX_ROW_INCHES = 0.3
BOX_MARGIN_INCHES = 1.1
# The downloadable formats and their content types.
FORMATS = {"png": "image/png", "svg": "image/svg+xml"}


@dataclass(frozen=True)
class RaterPoint:
    """One rater on the rater-statistics chart."""

    label: str
    trials: int
    agreement: float | None  # share of clear pairs decided like the consensus; None without clear pairs
    flagged: bool


@dataclass(frozen=True)
class IntervalPoint:
    """One image on the confidence-interval chart: a score with its interval,
    and optionally a second estimate drawn beside it for comparison."""

    label: str
    score: float
    low: float
    high: float
    group: str  # picks the colour (the distortion category)
    other: float | None = None  # e.g. the Elo MOS


def _figure(title: str, xlabel: str, ylabel: str, height: float = SIZE[1]) -> tuple[Figure, object]:
    figure = Figure(figsize=(SIZE[0], height), dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(title)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    return figure, axes


def _no_data(axes, text: str = NO_DATA) -> None:
    axes.text(0.5, 0.5, text, transform=axes.transAxes, ha="center", va="center", fontsize=14, color="#777")
    axes.set_xticks([])
    axes.set_yticks([])


def encode(figure: Figure, fmt: str = "png") -> bytes:
    """The figure as PNG or SVG bytes."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown chart format {fmt!r}: use one of {', '.join(FORMATS)}")
    buffer = io.BytesIO()
    # No software or date stamp: the bytes then depend on the data only.
    metadata = {"Software": None} if fmt == "png" else {"Date": None, "Creator": None}
    figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def chart(build: Callable[..., Figure]) -> Callable[..., bytes]:
    """Turn a figure builder into a chart function returning image bytes (``fmt``: png or svg);
    the builder stays reachable as the chart's ``figure``."""

    @functools.wraps(build)
    def render(*args, fmt: str = "png", **kwargs) -> bytes:
        return encode(build(*args, **kwargs), fmt)

    render.figure = build
    return render


@chart
def histogram(
    values: Sequence[float],
    *,
    title: str,
    xlabel: str,
    ylabel: str = "count",
    bins: int = 30,
    mark: float | None = None,
    mark_label: str = "",
) -> Figure:
    """Distribution of ``values``. Whole numbers get one bar per value (up to
    ``bins`` distinct values), so counts such as judgments per image read exactly.
    ``mark`` draws a dashed vertical line there (a target, say), labelled ``mark_label``."""
    figure, axes = _figure(title, xlabel, ylabel)
    values = [float(v) for v in values]
    if not values:
        _no_data(axes)
        return figure
    low, high = min(values), max(values)
    if all(v.is_integer() for v in values) and high - low < bins:
        edges = [low - 0.5 + i for i in range(int(high - low) + 2)]
        axes.xaxis.get_major_locator().set_params(integer=True)  # counts: no tick at 26.6 judgments
    elif low == high:
        edges = [low - 0.5, high + 0.5]
    else:
        edges = bins
    axes.hist(values, bins=edges, color=ACCENT, edgecolor="white")
    if mark is not None:
        span = max(high - low, 1.0)
        if low - span <= mark <= high + span:
            axes.axvline(mark, color=FLAGGED, linestyle="--", linewidth=1.2, label=mark_label or None)
            if mark_label:
                axes.legend(loc="upper left", fontsize=8)
        elif mark_label:  # a line far off would squeeze every bar into a sliver: name it instead
            side = "right" if mark > high else "left"
            axes.text(
                0.01, 0.97, f"{mark_label} (off the chart, {side})", transform=axes.transAxes, va="top", fontsize=8
            )
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.margins(y=0.15)  # headroom so the summary below never covers a bar
    axes.text(
        0.99,
        0.97,
        f"n = {len(values)}, mean = {sum(values) / len(values):.1f}",
        transform=axes.transAxes,
        ha="right",
        va="top",
        fontsize=9,
    )
    return figure


@chart
def box_plot(
    groups: Mapping[str, Sequence[float]],
    *,
    title: str,
    value_label: str,
    group_label: str,
    sort_by_median: bool = False,
) -> Figure:
    """One horizontal box per group, each named in full on its own row; empty groups are left
    out. Groups run from the top in the mapping's order, or from the highest median down with
    ``sort_by_median``; the figure grows by a row's height per group beyond what SIZE holds."""
    groups = {str(name): [float(v) for v in values] for name, values in groups.items() if len(values)}
    if sort_by_median:
        groups = dict(sorted(groups.items(), key=lambda item: statistics.median(item[1]), reverse=True))
    height = max(SIZE[1], BOX_MARGIN_INCHES + BOX_ROW_INCHES * len(groups))
    figure, axes = _figure(title, value_label, group_label, height=height)
    if not groups:
        _no_data(axes)
        return figure
    labels = [f"{name} (n={len(values)})" for name, values in groups.items()]
    axes.boxplot(
        list(groups.values()),
        tick_labels=labels,
        orientation="horizontal",
        patch_artist=True,
        boxprops={"facecolor": "#dbe6f6"},
        widths=0.6,
    )
    axes.invert_yaxis()  # the first group on top, where reading starts
    axes.tick_params(axis="y", labelsize=8)
    axes.grid(axis="x", color="#e5e5e5", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure


@chart
def counts_per_hour(
    counts: Sequence[tuple[datetime, int]], *, title: str, xlabel: str = "hour (UTC)", ylabel: str = "count"
) -> Figure:
    """A bar per hour; ``counts`` holds (start of the hour, count) pairs. Hours
    missing from ``counts`` show as gaps, so idle periods are visible."""
    figure, axes = _figure(title, xlabel, ylabel)
    counts = [(hour, n) for hour, n in counts if n]
    if not counts:
        _no_data(axes)
        return figure
    hours = [hour for hour, _ in counts]
    axes.bar(hours, [n for _, n in counts], width=timedelta(hours=1) * 0.9, align="edge", color=ACCENT)
    axes.set_xlim(min(hours) - timedelta(hours=1), max(hours) + timedelta(hours=2))
    locator = mdates.AutoDateLocator()
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    axes.yaxis.get_major_locator().set_params(integer=True)
    return figure


@chart
def rater_agreement(points: Sequence[RaterPoint], *, title: str = "Raters: agreement with the consensus") -> Figure:
    """Each rater's agreement on clear pairs against their number of trials,
    flagged raters in red. Raters without a clear pair yet have no agreement
    and are counted in a note rather than drawn."""
    figure, axes = _figure(title, "trials", "agreement on clear pairs")
    placed = [p for p in points if p.agreement is not None]
    if not placed:
        _no_data(axes, f"{NO_DATA}: {len(points)} rater(s), none has judged a clear pair" if points else NO_DATA)
        return figure
    for flagged, color, label in ((False, ACCENT, "not flagged"), (True, FLAGGED, "flagged")):
        group = [p for p in placed if p.flagged == flagged]
        if group:
            axes.scatter(
                [p.trials for p in group],
                [p.agreement for p in group],
                color=color,
                label=f"{label} ({len(group)})",
                alpha=0.8,
                edgecolors="none",
            )
    axes.set_ylim(-0.05, 1.05)
    axes.set_xlim(left=0)
    axes.axhline(0.5, color="#999", linestyle=":", linewidth=1)  # a coin flip
    axes.legend(loc="lower right", fontsize=8)
    unplaced = len(points) - len(placed)
    if unplaced:
        axes.text(
            0.01, 0.01, f"{unplaced} without a clear pair yet", transform=axes.transAxes, fontsize=8, color="#555"
        )
    return figure


@chart
def intervals(
    points: Sequence[IntervalPoint],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    groups: Sequence[str] = (),
    other_label: str = "other estimate",
    empty_text: str = NO_DATA,
) -> Figure:
    """Each point's score with its interval as an error bar, sorted by score
    from worst to best, coloured by group (``groups`` fixes the colour order;
    groups not listed follow in the order they first appear). Points with an
    ``other`` value get it in a second panel below, over the same images, on its
    own y axis: two estimates on different scales (Bradley–Terry's spread and
    Elo's) would squeeze one of them flat on a shared axis."""
    points = sorted(points, key=lambda p: (p.score, p.label))
    others = [(x, p.other) for x, p in enumerate(points) if p.other is not None]
    figure = Figure(figsize=SIZE, dpi=DPI, layout="constrained")
    figure.suptitle(title)
    if others:
        axes, other_axes = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    else:
        axes, other_axes = figure.add_subplot(), None
    axes.set_ylabel(ylabel, fontsize=9)
    (other_axes or axes).set_xlabel(xlabel)
    if not points:
        _no_data(axes, empty_text)
        return figure
    order = [g for g in groups if any(p.group == g for p in points)]
    order += [g for g in dict.fromkeys(p.group for p in points) if g not in order]
    for index, group in enumerate(order):
        members = [(x, p) for x, p in enumerate(points) if p.group == group]
        axes.errorbar(
            [x for x, _ in members],
            [p.score for _, p in members],
            # Distances below and above the score; max() guards against rounding putting a bound past it.
            yerr=[[max(p.score - p.low, 0.0) for _, p in members], [max(p.high - p.score, 0.0) for _, p in members]],
            fmt="o",
            markersize=4,
            capsize=2,
            elinewidth=1,
            color=GROUP_COLORS[index % len(GROUP_COLORS)],
            label=f"{group} ({len(members)})",
        )
    axes.legend(loc="upper left", fontsize=7)
    if other_axes is not None:
        other_axes.scatter([x for x, _ in others], [y for _, y in others], marker="x", s=18, color=MUTED, linewidths=1)
        other_axes.set_ylabel(other_label, fontsize=9)
        other_axes.tick_params(axis="y", labelsize=7)
    bottom = other_axes or axes
    if len(points) <= MAX_NAMED_TICKS:
        # Upright names take a tick's width only, so neighbours never overlap.
        bottom.set_xticks(range(len(points)), [p.label for p in points], rotation=90, fontsize=6)
    else:  # names would overlap: the order itself is what matters
        bottom.set_xticks([])
    bottom.set_xlim(-0.75, len(points) - 0.25)
    return figure
