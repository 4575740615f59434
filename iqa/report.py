"""Benchmark files: CSV, Markdown, an HTML page, the page's content as JSON, and plots as PNG and SVG
(no Django here)."""

from __future__ import annotations

import html
import json
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
PAGE_DATA = "report.json"  # the tables and plot names, for the web app's page
FILES = ("benchmark.csv", "benchmark.md", "index.html", PAGE_DATA)


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
        "Metric",
        "n",
        "SRCC",
        "SRCC 95% CI",
        "KRCC",
        "PLCC",
        "RMSE",
        "SRCC per reference",
        "KRCC per reference",
        "fit",
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


PAGE_STYLE = (
    "body{font:15px/1.5 system-ui,sans-serif;color:#1f2328;margin:2rem auto;max-width:80rem;padding:0 1rem}"
    "h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #d0d7de;padding-bottom:.2rem}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em;font-variant-numeric:tabular-nums}"
    "td,th{border-bottom:1px solid #d0d7de;padding:.25rem .6rem;text-align:right}"
    "th{background:#f6f8fa}td:first-child,th:first-child{text-align:left}"
    "figure{margin:1rem 0}img{max-width:100%;height:auto;border:1px solid #d0d7de}"
    "figcaption{font-size:.9em;color:#59636e}.muted{color:#59636e}"
)


def page_data(result: BenchmarkResult, title: str, plots: list[str]) -> dict:
    """The report's content as plain data (report.json): the web app renders its own page from it."""
    return {
        "title": title,
        "images": result.images,
        "references": result.references,
        "sections": [
            {"heading": heading, "note": note, "header": header, "rows": rows}
            for heading, note, (header, rows) in _sections(result)
        ],
        "plots": [{"png": name, "svg": svg_name(name)} for name in plots],
    }


def svg_name(png_name: str) -> str:
    return png_name.removesuffix(".png") + ".svg"


def html_page(result: BenchmarkResult, title: str, plots: list[str]) -> str:
    """A page that stands alone (opened from disk or an --out folder): tables, then each plot
    with links to its PNG and SVG files."""

    def table(header, rows):
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p>{result.images} images, {result.references} references. "
        "Files: <a href='benchmark.csv'>CSV</a> · <a href='benchmark.md'>Markdown</a></p>",
    ]
    for heading, note, (header, rows) in _sections(result):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            parts.append(f"<p class='muted'>{html.escape(note)}</p>")
        parts.append(table(header, rows))
    if plots:
        parts.append("<h2>Plots</h2>")
        for name in plots:
            png, svg = html.escape(name), html.escape(svg_name(name))
            parts.append(
                f"<figure><img src='{png}' alt='{png}'><figcaption>{png}: "
                f"<a href='{png}' download>PNG</a> · <a href='{svg}' download>SVG</a></figcaption></figure>"
            )
    parts.append("</body></html>")
    return "".join(parts)


def _figure(width: float = 6.0, height: float = 4.5):
    """A figure outside pyplot's registry (freed with its last reference), laid out so its labels stay inside."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(figure, folder: Path, stem: str) -> str:
    """Write the figure as ``stem``.png and ``stem``.svg; returns the PNG's name."""
    figure.savefig(folder / f"{stem}.png", metadata={"Software": None})
    figure.savefig(folder / f"{stem}.svg", metadata={"Date": None, "Creator": None})
    return f"{stem}.png"


def scatter_figure(frame: pd.DataFrame, result: BenchmarkResult, info):
    """PIPAL Fig. 5 style: MOS against the metric, one colour per category."""
    figure = _figure()
    axis = figure.add_subplot()
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
    return figure


SR_ROW_INCHES = 0.28  # per SR method on the SR-method chart, so its names never overlap


def sr_methods_figure(sr: pd.DataFrame, info):
    """PIPAL Fig. 3's question (does the metric order the SR methods as people do?) as two dot
    panels sharing one row per method, methods by mean MOS (best on top): each name is a tick
    label of its own row, so names cannot overlap however close the means are."""
    rows = sr.sort_values("mos", ascending=True)
    names = [f"{record['type_code']} {record['type_name']}" for record in rows.to_dict("records")]
    figure = _figure(7.0, max(3.0, 1.4 + SR_ROW_INCHES * len(rows)))
    mos_axis, metric_axis = figure.subplots(1, 2, sharey=True)
    positions = np.arange(len(rows))
    colour = CATEGORY_COLOURS[SR_CATEGORY]
    mos_axis.scatter(rows["mos"], positions, color=colour)
    metric_axis.scatter(rows[info.name], positions, color=colour)
    mos_axis.set_yticks(positions, names, fontsize=8)
    mos_axis.set(xlabel="mean MOS", title="people")
    metric_axis.set(xlabel=f"mean {info.name} {info.arrow}", title=info.name)
    for axis in (mos_axis, metric_axis):
        axis.grid(axis="y", color="#e5e5e5", linewidth=0.8)
        axis.set_axisbelow(True)
    figure.suptitle(f"SR methods: {info.name}")
    return figure


def scatter_plots(frame: pd.DataFrame, result: BenchmarkResult, folder: Path) -> list[str]:
    """PIPAL Fig. 5 style: MOS against each metric, one colour per category; per SR method,
    the mean MOS beside the metric's mean; SRCC bars. Each plot as PNG and SVG; returns the PNG names."""
    names = [
        _save(scatter_figure(frame, result, info), folder, f"scatter_{_safe(info.name)}") for info in result.metrics
    ]
    if not result.sr_methods.empty:
        names += [
            _save(sr_methods_figure(result.sr_methods, info), folder, f"sr_methods_{_safe(info.name)}")
            for info in result.metrics
        ]
    names.append(_save(srcc_figure(result), folder, "srcc"))
    return names


def monotone_curve(x: np.ndarray, y: np.ndarray, logistic: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A curve through (x, y) that only rises or only falls, as (x, fitted y) to draw.

    The VQEG 5-parameter logistic has a linear term that can bend a saturating curve back
    (rising, then falling), which says the metric orders images both ways at once. So: the
    asked-for logistic when its curve is monotone; else the 4-parameter one (monotone by its
    form, but its fit may fall back to another form); else isotonic regression in the
    direction of the rank correlation (monotone by construction)."""
    from scipy import optimize
    from scipy import stats as scipy_stats

    from iqa import stats

    grid = np.linspace(x.min(), x.max(), 200)
    for parameters in dict.fromkeys((logistic, 4)):
        curve = stats.logistic_fit(x, y, parameters).predict(grid)
        steps = np.diff(curve)
        if np.all(steps >= 0) or np.all(steps <= 0):
            return grid, curve
    order = np.argsort(x, kind="stable")
    increasing = bool(scipy_stats.spearmanr(x, y).statistic >= 0)
    fitted = optimize.isotonic_regression(y[order], increasing=increasing).x
    return x[order], fitted


def type_pair_figure(frame: pd.DataFrame, info, types: tuple[str, str], logistic: int = 5):
    """PIPAL Fig. 5 style: the images of two distortion types (by code), MOS against one metric, each
    type with its own fitted monotone curve: do the two types sit on one curve?"""
    figure = _figure()
    axis = figure.add_subplot()
    for code, colour in zip(types, ("#d62728", "#1f77b4"), strict=True):
        part = frame[frame["type_code"] == code]
        if part.empty:
            raise ValueError(f"no judged image of distortion type {code!r} to plot")
        x, y = part[info.name].to_numpy(float), part["mos"].to_numpy(float)
        name = part["type_name"].iloc[0]
        axis.scatter(x, y, s=12, alpha=0.75, color=colour, label=f"{code} {name} (n={len(part)})")
        if len(part) >= 5 and np.ptp(x) > 0 and np.ptp(y) > 0:  # five parameters need five points
            axis.plot(*monotone_curve(x, y, logistic), color=colour, linewidth=1.5)
    axis.set(xlabel=f"{info.name} {info.arrow}", ylabel="MOS", title=f"{info.name}: type {types[0]} vs {types[1]}")
    axis.legend(fontsize=8)
    return figure


def type_pair_plot(frame: pd.DataFrame, info, types: tuple[str, str], folder: Path, logistic: int = 5) -> str:
    return _save(
        type_pair_figure(frame, info, types, logistic),
        folder,
        f"types_{_safe(types[0])}_{_safe(types[1])}_{_safe(info.name)}",
    )


def srcc_figure(result: BenchmarkResult):
    usable = [info for info in result.metrics if result.overall[info.name].agreement is not None]
    figure = _figure(max(4, 0.8 * len(usable) + 2), 3.5)
    axis = figure.add_subplot()
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
    return figure


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
    (folder / PAGE_DATA).write_text(json.dumps(page_data(result, title, plots), ensure_ascii=False), encoding="utf-8")
    tables = ["sr_methods.csv"] if not result.sr_methods.empty else []
    return [*FILES, *tables, *(name for png in plots for name in (png, svg_name(png)))]
