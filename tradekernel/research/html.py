"""An HTML report of a backtest run with plots, drawn as inline SVG (no plotting library, no
script, no file beside it): the page opens anywhere and is the same bytes for the same run.

Input is a `tk backtest --out` directory (report.load_run, plus latency.csv and the
mark_ticks column of samples.csv when the run wrote them). Plots: equity (net P&L), drawdown
from the running peak, position, fills over the mark price (buys green, sells red) and a
histogram of tick-to-order latency in virtual ns. Each plot's data points are the run's own
figures, one SVG element each (a polyline vertex per sample, a circle per fill, a bar per
bin), with the figures in the text table of report.render above them.

`sweep_page` is the page of a `tk sweep` (--html): its table sorted by the chosen metric and,
for a two-parameter grid, a heatmap of that metric: one cell per point (first parameter down,
second across, in grid order), coloured from red (lowest) through yellow to green (highest),
each cell labelled with its value and carrying it in a data-value attribute.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from html import escape
from pathlib import Path

from .report import ReportError, load_run, metrics, render
from .sweep import Point, shown, table

WIDTH, HEIGHT, PAD = 760, 200, 36  # one plot, in SVG user units
CELL_W, CELL_H, LABEL_W = 90, 32, 110  # a heatmap cell, and the room for the row labels
LOW, MID, HIGH = (215, 25, 28), (255, 255, 191), (26, 150, 65)  # the heatmap's colour scale
BINS = 30  # latency histogram bins
MAX_POINTS = 5_000  # vertices or dots per plot; longer series are thinned evenly


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


class _Axes:
    """Data coordinates to SVG coordinates: x left to right, y upwards."""

    def __init__(self, xs: list[float], ys: list[float]) -> None:
        self.x0, self.x1 = min(xs), max(xs)
        self.y0, self.y1 = min(ys), max(ys)
        if self.x1 == self.x0:
            self.x1 = self.x0 + 1
        if self.y1 == self.y0:
            self.y0, self.y1 = self.y0 - 1, self.y1 + 1

    def x(self, value: float) -> float:
        return round(PAD + (value - self.x0) / (self.x1 - self.x0) * (WIDTH - 2 * PAD), 2)

    def y(self, value: float) -> float:
        return round(HEIGHT - PAD - (value - self.y0) / (self.y1 - self.y0) * (HEIGHT - 2 * PAD),
                     2)  # fmt: skip

    def frame(self, title: str, x_label: str) -> list[str]:
        return [
            f'<text x="{PAD}" y="16" class="t">{escape(title)}</text>',
            f'<rect x="{PAD}" y="{PAD}" width="{WIDTH - 2 * PAD}" height="{HEIGHT - 2 * PAD}" '
            'class="f"/>',
            f'<text x="2" y="{PAD + 4}" class="a">{self.y1:.6g}</text>',
            f'<text x="2" y="{HEIGHT - PAD}" class="a">{self.y0:.6g}</text>',
            f'<text x="{PAD}" y="{HEIGHT - 8}" class="a">{self.x0:.6g}</text>',
            f'<text x="{WIDTH - PAD}" y="{HEIGHT - 8}" class="a" text-anchor="end">'
            f"{self.x1:.6g} {escape(x_label)}</text>",
        ]


def _svg(name: str, body: list[str]) -> str:
    head = (f'<svg id="{name}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
            f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">')  # fmt: skip
    return head + "".join(body) + "</svg>"


def line_plot(name: str, title: str, points: list[tuple[float, float]]) -> str:
    """A polyline with one vertex per point (thinned past MAX_POINTS)."""
    if not points:
        return _svg(name, [f'<text x="{PAD}" y="16" class="t">{escape(title)}: no data</text>'])
    points = _thin(points)
    axes = _Axes([p[0] for p in points], [p[1] for p in points])
    vertices = " ".join(f"{axes.x(x)},{axes.y(y)}" for x, y in points)
    return _svg(name, [*axes.frame(title, "s"), f'<polyline points="{vertices}" class="l"/>'])


def fills_plot(marks: list[tuple[float, float]], fills: list[tuple[float, float, bool]]) -> str:
    """The mark price as a line and every fill as a dot at its time and price."""
    title = "fills over the mark price (ticks)"
    if not fills and not marks:
        return _svg("fills", [f'<text x="{PAD}" y="16" class="t">{title}: no data</text>'])
    fills = fills[:MAX_POINTS]
    xs = [m[0] for m in marks] + [f[0] for f in fills]
    ys = [m[1] for m in marks] + [f[1] for f in fills]
    axes = _Axes(xs, ys)
    body = axes.frame(title, "s")
    if marks:
        vertices = " ".join(f"{axes.x(x)},{axes.y(y)}" for x, y in _thin(marks))
        body.append(f'<polyline points="{vertices}" class="m"/>')
    body += [f'<circle cx="{axes.x(x)}" cy="{axes.y(y)}" r="2.5" class="{"b" if buy else "s"}"/>'
             for x, y, buy in fills]  # fmt: skip
    return _svg("fills", body)


def histogram(values: list[int]) -> str:
    """BINS equal bins from the least to the greatest value; one bar per bin with its count."""
    title = "tick-to-order latency (virtual ns)"
    if not values:
        return _svg("latency", [f'<text x="{PAD}" y="16" class="t">{title}: no orders</text>'])
    low, high = min(values), max(values)
    width = max(1, -(-(high - low + 1) // BINS))
    counts = [0] * BINS
    for value in values:
        counts[(value - low) // width] += 1
    axes = _Axes([low, low + width * BINS], [0, max(counts)])
    body = axes.frame(title, "ns")
    bar = (WIDTH - 2 * PAD) / BINS
    for i, count in enumerate(counts):
        top = axes.y(count)
        body.append(f'<rect x="{round(PAD + i * bar, 2)}" y="{top}" width="{round(bar - 1, 2)}" '
                    f'height="{round(HEIGHT - PAD - top, 2)}" class="h" data-count="{count}">'
                    f"<title>{low + i * width}..{low + (i + 1) * width - 1} ns: {count}</title>"
                    "</rect>")  # fmt: skip
    return _svg("latency", body)


STYLE = """body{font-family:sans-serif;margin:2em;color:#222}pre{background:#f6f6f6;padding:1em}
svg{display:block;margin:1em 0}.t{font-size:13px;font-weight:bold}.a{font-size:10px;fill:#555}
.f{fill:none;stroke:#ccc}.l{fill:none;stroke:#2060c0;stroke-width:1.2}
.m{fill:none;stroke:#999;stroke-width:1}.b{fill:#1a9641}.s{fill:#d7191c}.h{fill:#2060c0}"""


def html_report(run: Path) -> str:
    """The page for a run directory; ReportError for a missing or malformed file."""
    summary, fills, samples = load_run(run)
    try:
        text = render(summary, metrics(summary, fills, samples))
        marks = _marks(run)
        latency = _latency(run)
        seconds = [ts / 1e9 for ts, _, _ in samples]
        equity = [(t, float(net)) for t, (_, net, _) in zip(seconds, samples, strict=True)]
        peak = None
        drawdown = []
        for t, (_, net, _) in zip(seconds, samples, strict=True):
            peak = net if peak is None or net > peak else peak
            drawdown.append((t, float(net - peak)))
        position = [(t, float(lots)) for t, (_, _, lots) in zip(seconds, samples, strict=True)]
        marked = [(t, float(m)) for t, m in zip(seconds, marks, strict=False) if m is not None]
        dots = [(int(r["ts_ns"]) / 1e9, float(r["price_ticks"]), r["side"] == "BUY")
                for r in fills]  # fmt: skip
    except (KeyError, ValueError, ArithmeticError) as err:
        raise ReportError(f"{run}: malformed run files: {err}") from None
    title = f"{summary['strategy']} on {summary['data']}"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>", f"<pre>{escape(text)}</pre>",
        line_plot("equity", "equity: net P&L (money)", equity),
        line_plot("drawdown", "drawdown from the running peak (money)", drawdown),
        line_plot("position", "position (lots)", position),
        fills_plot(marked, dots), histogram(latency), "</body></html>", "",
    ])  # fmt: skip


def _marks(run: Path) -> list[Decimal | None]:
    with (run / "samples.csv").open(newline="") as handle:
        return [Decimal(r["mark_ticks"]) if r.get("mark_ticks") else None
                for r in csv.DictReader(handle)]  # fmt: skip


def _latency(run: Path) -> list[int]:
    path = run / "latency.csv"
    if not path.exists():
        return []
    with path.open(newline="") as handle:
        return [int(r["tick_to_order_ns"]) for r in csv.DictReader(handle)]


def _colour(t: float) -> str:
    """t in [0, 1] on the LOW-MID-HIGH scale, as an exact rgb() (the same bytes every time)."""
    a, b, u = (LOW, MID, t * 2) if t <= 0.5 else (MID, HIGH, t * 2 - 1)
    return "rgb({},{},{})".format(*(round(x + (y - x) * u) for x, y in zip(a, b, strict=True)))


def heatmap_svg(points: list[Point], metric: str) -> str:
    """A two-parameter grid's `metric` as coloured cells: first parameter down, second across."""
    names = list(points[0].params)
    down = list(dict.fromkeys(p.params[names[0]] for p in points))
    across = list(dict.fromkeys(p.params[names[1]] for p in points))
    values = [float(getattr(p, metric)) for p in points]
    low, high = min(values), max(values)
    width, height = LABEL_W + CELL_W * len(across), 2 * CELL_H + CELL_H * len(down)
    body = [f'<text x="2" y="16" class="t">{escape(metric)} by {escape(names[0])} (down) x '
            f"{escape(names[1])} (across)</text>"]  # fmt: skip
    for col, value in enumerate(across):
        body.append(f'<text x="{LABEL_W + col * CELL_W + CELL_W // 2}" y="{2 * CELL_H - 8}" '
                    f'class="a" text-anchor="middle">{escape(str(value))}</text>')  # fmt: skip
    for row, value in enumerate(down):
        body.append(f'<text x="{LABEL_W - 6}" y="{2 * CELL_H + row * CELL_H + CELL_H // 2 + 4}" '
                    f'class="a" text-anchor="end">{escape(str(value))}</text>')  # fmt: skip
    for p, value in zip(points, values, strict=True):
        row, col = down.index(p.params[names[0]]), across.index(p.params[names[1]])
        x, y = LABEL_W + col * CELL_W, 2 * CELL_H + row * CELL_H
        text = shown(getattr(p, metric))
        where = ", ".join(f"{n}={p.params[n]}" for n in names)
        t = 0.5 if high == low else (value - low) / (high - low)
        body.append(f'<rect x="{x}" y="{y}" width="{CELL_W - 2}" height="{CELL_H - 2}" '
                    f'fill="{_colour(t)}" data-value="{text}"><title>{escape(where)}: '
                    f"{escape(metric)} {text}</title></rect>"
                    f'<text x="{x + CELL_W // 2}" y="{y + CELL_H // 2 + 4}" class="a" '
                    f'text-anchor="middle">{text}</text>')  # fmt: skip
    return (f'<svg id="heatmap" xmlns="http://www.w3.org/2000/svg" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}">' + "".join(body) + "</svg>")


def sweep_page(title: str, points: list[Point], metric: str) -> str:
    """The page of a sweep: its table sorted by `metric`, and the heatmap of a 2-D grid."""
    two = bool(points) and len(points[0].params) == 2
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>", f"<pre>{escape(chr(10).join(table(points, metric)))}</pre>",
        heatmap_svg(points, metric) if two else "", "</body></html>", "",
    ])  # fmt: skip
