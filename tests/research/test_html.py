"""`tk report RUN --html`: the page holds the five plots, each drawn from the run's own
figures (a vertex per sample, a dot per fill, bars that count every latency), with the highest
net P&L drawn highest; the same run gives the same bytes."""

from __future__ import annotations

import csv
import re
from html.parser import HTMLParser
from pathlib import Path

from click.testing import CliRunner

from tradekernel.research.cli import backtest, data, report_command


class Elements(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svg: dict[str, list[tuple[str, dict[str, str]]]] = {}
        self._current: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "svg":
            self._current = attributes["id"]
            self.svg[self._current] = []
        elif self._current is not None:
            self.svg[self._current].append((tag, attributes))

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._current = None


def vertices(element: dict[str, str]) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in element["points"].split()]  # type: ignore[misc]


def test_the_page_draws_the_run(tmp_path: Path) -> None:
    runner = CliRunner()
    session, run = tmp_path / "s.itch", tmp_path / "run"
    assert runner.invoke(data, ["generate", str(session), "--events", "20000", "--seed", "4"]
                         ).exit_code == 0  # fmt: skip
    assert runner.invoke(backtest, ["imbalance", str(session), "--out", str(run), "--quiet"]
                         ).exit_code == 0  # fmt: skip
    page = tmp_path / "report.html"
    result = runner.invoke(report_command, [str(run), "--html", str(page)])
    assert result.exit_code == 0, result.output
    parsed = Elements()
    parsed.feed(page.read_text())
    assert set(parsed.svg) == {"equity", "drawdown", "position", "fills", "latency"}
    samples = list(csv.DictReader((run / "samples.csv").open()))
    fills = list(csv.DictReader((run / "fills.csv").open()))
    latencies = (run / "latency.csv").read_text().split()[1:]
    assert len(fills) > 10 and len(samples) > 5 and latencies
    equity = vertices(next(a for t, a in parsed.svg["equity"] if t == "polyline"))
    assert len(equity) == len(samples)
    nets = [float(s["net"]) for s in samples]
    assert equity[nets.index(max(nets))][1] == min(y for _, y in equity)  # SVG y grows down
    dots = [a for t, a in parsed.svg["fills"] if t == "circle"]
    assert len(dots) == len(fills)
    assert [a["class"] for a in dots] == ["b" if f["side"] == "BUY" else "s" for f in fills]
    bars = [a for t, a in parsed.svg["latency"] if t == "rect" and "data-count" in a]
    assert sum(int(a["data-count"]) for a in bars) == len(latencies)
    assert re.search(r"<pre>.*realised", page.read_text(), re.S)
    again = tmp_path / "again.html"
    assert runner.invoke(report_command, [str(run), "--html", str(again)]).exit_code == 0
    assert again.read_bytes() == page.read_bytes()
