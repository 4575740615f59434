"""Benchmark files: CSV, Markdown, an HTML page and PNG plots (no Django here)."""

from __future__ import annotations

import html
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from iqa.benchmark_tables import SR_CATEGORY, BenchmarkResult, Cell

CATEGORY_COLOURS = {
    "traditional": "#1f77b4",
    "denoising": "#2ca02c",
    "super_resolution": "#d62728",
    "mixture": "#9467bd",
    "": "#7f7f7f",
}
FILES = ("benchmark.csv", "benchmark.md", "index.html")


def _number(value: float, digits: int = 4) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def long_rows(result: BenchmarkResult) -> pd.DataFrame:
    """Every cell of every table, one row each (the CSV)."""
    rows = []
    for info in result.metrics:
        cells = [result.overall[info.name], *result.table3[info.name].values()]
        cells += [replace(cell, group=f"type: {cell.group}") for cell in result.by_type.get(info.name, {}).values()]
        for cell in cells:
            row = {"metric": info.name, "direction": info.arrow, "group": cell.group, "n": cell.n}
            if cell.agreement is not None:
                a = cell.agreement
                row.update(
                    srcc=a.srcc,
                    srcc_low=cell.interval.low,
                    srcc_high=cell.interval.high,
                    krcc=a.krcc,
                    plcc=a.plcc,
                    rmse=a.rmse,
                    srcc_per_reference=a.srcc_per_group,
                    krcc_per_reference=a.krcc_per_group,
                    references=a.groups,
                    fit=a.fit,
                )
            rows.append(row)
    return pd.DataFrame(rows)


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _overall_rows(result: BenchmarkResult) -> tuple[list[str], list[list[str]]]:
    header = [
        "Metric", "n", "SRCC", "SRCC 95% CI", "KRCC", "PLCC", "RMSE", "SRCC per reference", "KRCC per reference", "fit"
    ]
    rows = []
    for info in result.metrics:
        cell: Cell = result.overall[info.name]
        if cell.agreement is None:
            rows.append([f"{info.name} {info.arrow}", str(cell.n), cell.text(), "", "", "", "", "", "", ""])
            continue
        a = cell.agreement
        rows.append(
            [
                f"{info.name} {info.arrow}",
                str(cell.n),
                _number(a.srcc),
                f"[{_number(cell.interval.low, 3)}, {_number(cell.interval.high, 3)}]",
                _number(a.krcc),
                _number(a.plcc),
                _number(a.rmse, 2),
                _number(a.srcc_per_group),
                _number(a.krcc_per_group),
                a.fit,
            ]
        )
    return header, rows


def _grid_rows(result: BenchmarkResult, field_name: str) -> tuple[list[str], list[list[str]]]:
    header = ["Metric", *result.groups]
    rows = [
        [f"{info.name} {info.arrow}", *(result.table3[info.name][group].text(field_name) for group in result.groups)]
        for info in result.metrics
    ]
    return header, rows


def _type_rows(result: BenchmarkResult) -> tuple[list[str], list[list[str]]]:
    header = ["Distortion type", *(f"{info.name} {info.arrow}" for info in result.metrics)]
    rows = [
        [label, *(result.by_type[info.name][label].text("srcc") for info in result.metrics)] for label in result.types
    ]
    return header, rows


def _sr_rows(result: BenchmarkResult) -> tuple[list[str], list[list[str]]]:
    table = result.sr_methods
    header = ["SR method", "images", *(f"{info.name} {info.arrow}" for info in result.metrics), "MOS ↑"]
    rows = []
    for record in table.to_dict("records"):
        rows.append(
            [
                f"{record['type_code']} {record['type_name']}",
                str(record["images"]),
                *(f"{_number(record[info.name])} ({record[info.name + '_rank']})" for info in result.metrics),
                f"{record['mos']:.2f} ({record['mos_rank']})",
            ]
        )
    return header, rows


def _significance_rows(result: BenchmarkResult) -> tuple[list[str], list[list[str]]]:
    header = ["Metric A", "Metric B", "SRCC A − B", "p (paired bootstrap)"]
    rows = [
        [test.metric_a, test.metric_b, f"{test.difference:+.4f}", f"{test.p_value:.3f}"] for test in result.significance
    ]
    return header, rows


def _sections(result: BenchmarkResult) -> list[tuple[str, str, tuple[list[str], list[list[str]]]]]:
    sections = [
        (
            "Whole study",
            "Signed so that agreement with the MOS is positive whatever the metric's direction; "
            "PLCC and RMSE after the VQEG logistic fit (PLCC of the fitted prediction, so positive by construction); "
            "SRCC and KRCC per reference are means over references "
            "(Elo MOS is identified only within a reference).",
            _overall_rows(result),
        ),
        (
            "SRCC per distortion group (PIPAL Table 3 layout)",
            f"Groups with fewer than {result.min_images} images show their count instead of a number.",
            _grid_rows(result, "srcc"),
        ),
        ("KRCC per distortion group", "", _grid_rows(result, "krcc")),
        ("PLCC per distortion group", "", _grid_rows(result, "plcc")),
    ]
    if result.types:
        sections.append(
            (
                "SRCC per distortion type",
                "Pooled over the type's images of every reference (levels and references mixed); types with fewer "
                f"than {result.min_images} images show their count.",
                _type_rows(result),
            )
        )
    if not result.sr_methods.empty:
        sections.append(
            (
                "SR methods (PIPAL Table 4 layout)",
                "Mean of each metric over the method's images, rank in brackets (1 = best for the metric's direction); "
                "rows by MOS rank.",
                _sr_rows(result),
            )
        )
    if result.significance:
        sections.append(
            (
                "Paired significance tests",
                "Two-sided paired bootstrap of the SRCC difference over the same resampled images.",
                _significance_rows(result),
            )
        )
    return sections


def markdown(result: BenchmarkResult, title: str) -> str:
    parts = [f"# {title}", "", f"{result.images} images, {result.references} references.", ""]
    for heading, note, (header, rows) in _sections(result):
        parts += [f"## {heading}", ""]
        if note:
            parts += [note, ""]
        parts += [_markdown_table(header, rows), ""]
    return "\n".join(parts)


def html_page(result: BenchmarkResult, title: str, plots: list[str]) -> str:
    def table(header, rows):
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>",
        "body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;",
        "margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}",
        "td:first-child,th:first-child{text-align:left}img{max-width:100%;margin:.5em 0}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{result.images} images, {result.references} references. "
        "Files: <a href='benchmark.csv'>CSV</a> · <a href='benchmark.md'>Markdown</a></p>",
    ]
    for heading, note, (header, rows) in _sections(result):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            parts.append(f"<p>{html.escape(note)}</p>")
        parts.append(table(header, rows))
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [f"<figure><img src='{html.escape(name)}' alt='{html.escape(name)}'></figure>" for name in plots]
    parts.append("</body></html>")
    return "".join(parts)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def scatter_plots(frame: pd.DataFrame, result: BenchmarkResult, folder: Path) -> list[str]:
    """PIPAL Fig. 5 style: MOS against each metric, one colour per category; and Fig. 3
    style: per SR method, mean MOS against the metric's mean."""
    plt = _pyplot()
    names = []
    for info in result.metrics:
        figure, axis = plt.subplots(figsize=(6, 4.5), dpi=100)
        for category, part in frame.groupby("category", sort=True):
            axis.scatter(
                part[info.name],
                part["mos"],
                s=10,
                alpha=0.7,
                label=category or "(none)",
                color=CATEGORY_COLOURS.get(category, "#7f7f7f"),
            )
        cell = result.overall[info.name]
        srcc = f"SRCC {cell.agreement.srcc:.3f}" if cell.agreement else cell.text()
        axis.set(xlabel=f"{info.name} {info.arrow}", ylabel="MOS (Elo)", title=f"{info.name}: {srcc}")
        axis.legend(fontsize=8)
        figure.tight_layout()
        name = f"scatter_{_safe(info.name)}.png"
        figure.savefig(folder / name)
        plt.close(figure)
        names.append(name)
    sr = result.sr_methods
    if not sr.empty:
        for info in result.metrics:
            figure, axis = plt.subplots(figsize=(6, 4.5), dpi=100)
            axis.scatter(sr[info.name], sr["mos"], color=CATEGORY_COLOURS[SR_CATEGORY])
            for record in sr.to_dict("records"):
                axis.annotate(record["type_name"], (record[info.name], record["mos"]), fontsize=7)
            axis.set(xlabel=f"mean {info.name} {info.arrow}", ylabel="mean MOS", title=f"SR methods: {info.name}")
            figure.tight_layout()
            name = f"sr_methods_{_safe(info.name)}.png"
            figure.savefig(folder / name)
            plt.close(figure)
            names.append(name)
    names.append(_srcc_bars(result, folder, plt))
    return names


def type_pair_plot(frame: pd.DataFrame, info, types: tuple[str, str], folder: Path, logistic: int = 5) -> str:
    """PIPAL Fig. 5 style: the images of two distortion types (by code), MOS against one metric, each
    type with its own fitted VQEG logistic curve: do the two types sit on one curve?"""
    from iqa import stats

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(6, 4.5), dpi=100)
    for code, colour in zip(types, ("#d62728", "#1f77b4"), strict=True):
        part = frame[frame["type_code"] == code]
        if part.empty:
            raise ValueError(f"no judged image of distortion type {code!r} to plot")
        x, y = part[info.name].to_numpy(float), part["mos"].to_numpy(float)
        name = part["type_name"].iloc[0]
        axis.scatter(x, y, s=12, alpha=0.75, color=colour, label=f"{code} {name} (n={len(part)})")
        if len(part) >= 5 and np.ptp(x) > 0 and np.ptp(y) > 0:  # five parameters need five points
            fit = stats.logistic_fit(x, y, logistic)
            grid = np.linspace(x.min(), x.max(), 200)
            axis.plot(grid, fit.predict(grid), color=colour, linewidth=1.5)
    axis.set(xlabel=f"{info.name} {info.arrow}", ylabel="MOS", title=f"{info.name}: type {types[0]} vs {types[1]}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    name = f"types_{_safe(types[0])}_{_safe(types[1])}_{_safe(info.name)}.png"
    figure.savefig(folder / name)
    plt.close(figure)
    return name


def _srcc_bars(result: BenchmarkResult, folder: Path, plt) -> str:
    usable = [info for info in result.metrics if result.overall[info.name].agreement is not None]
    figure, axis = plt.subplots(figsize=(max(4, 0.8 * len(usable) + 2), 3.5), dpi=100)
    values = [result.overall[info.name].agreement.srcc for info in usable]
    lows = [result.overall[info.name].interval.low for info in usable]
    highs = [result.overall[info.name].interval.high for info in usable]
    positions = np.arange(len(usable))
    axis.bar(positions, values, color="#4c72b0")
    axis.errorbar(
        positions, values, yerr=[np.subtract(values, lows), np.subtract(highs, values)], fmt="none", color="black"
    )
    axis.set_xticks(positions, [f"{info.name} {info.arrow}" for info in usable], rotation=30, ha="right")
    axis.set(ylabel="SRCC with MOS (95% CI)", title="Whole study")
    figure.tight_layout()
    figure.savefig(folder / "srcc.png")
    plt.close(figure)
    return "srcc.png"


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def write(frame: pd.DataFrame, result: BenchmarkResult, folder: Path, title: str, type_pair=None) -> list[str]:
    """Write every file of the report into ``folder``; returns their names. ``type_pair``:
    (metric info, (type code, type code)) for a Fig. 5-style plot."""
    folder.mkdir(parents=True, exist_ok=True)
    long_rows(result).to_csv(folder / "benchmark.csv", index=False)
    if not result.sr_methods.empty:
        result.sr_methods.to_csv(folder / "sr_methods.csv", index=False)
    (folder / "benchmark.md").write_text(markdown(result, title), encoding="utf-8")
    plots = scatter_plots(frame, result, folder)
    if type_pair is not None:
        plots.insert(0, type_pair_plot(frame, type_pair[0], type_pair[1], folder))
    (folder / "index.html").write_text(html_page(result, title, plots), encoding="utf-8")
    return [*FILES, *(["sr_methods.csv"] if not result.sr_methods.empty else []), *plots]
