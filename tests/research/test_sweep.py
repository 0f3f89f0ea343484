"""`tk sweep`: the grid is every combination in order, a bad grid is one line, each point is a
machine of its own booted for it, and the table is the same whether the runs share one process
or spread over two, and the same as the in-process engine's (--host); a two-parameter grid also
prints its heatmap, and --html draws it in colour."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from tradekernel.kernel.trading import strategies
from tradekernel.kernel.trading.config import ConfigError
from tradekernel.research import booted
from tradekernel.research.cli import sweep_command
from tradekernel.research.sweep import param_text, parse_grid, sweep
from tradekernel.research.synthetic import SessionSpec, generate

SAMPLES = Path(strategies.__file__).parent


class Cells(HTMLParser):
    """The heatmap's cells: data-value -> fill."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list) -> None:
        attributes = dict(attrs)
        if tag == "rect" and "data-value" in attributes:
            self.values[attributes["data-value"]] = attributes["fill"]


def test_the_grid_is_every_combination_in_order() -> None:
    assert parse_grid(["size=100,200", "threshold=0.5,0.7"]) == [
        {"size": 100, "threshold": parse_grid(["t=0.5"])[0]["t"]},
        {"size": 100, "threshold": parse_grid(["t=0.7"])[0]["t"]},
        {"size": 200, "threshold": parse_grid(["t=0.5"])[0]["t"]},
        {"size": 200, "threshold": parse_grid(["t=0.7"])[0]["t"]},
    ]  # fmt: skip
    for bad, message in (("size", "expected NAME=V1,V2"), ("size=", "expected NAME=V1,V2")):
        with pytest.raises(ConfigError, match=message):
            parse_grid([bad])
    with pytest.raises(ConfigError, match="already in the grid"):
        parse_grid(["size=1", "size=2"])


def test_one_machine_per_point_and_the_same_rows_everywhere(tmp_path: Path,
                                                            monkeypatch) -> None:  # noqa: ANN001
    data = tmp_path / "s.itch"
    data.write_bytes(generate(SessionSpec(events=4000, seed=2))[0])
    points = parse_grid(["size=100,200", "threshold=0.5,0.7"])
    imbalance = SAMPLES / "imbalance.py"
    machines: list[object] = []
    make_pc = booted.make_pc

    def counted(config):  # noqa: ANN001, ANN202
        assert config.deterministic
        machines.append(make_pc(config))
        return machines[-1]

    def not_here(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a sweep point ran the engine in the host process")

    with monkeypatch.context() as patch:
        patch.setattr(booted, "make_pc", counted)
        patch.setattr("tradekernel.research.sweep.run_backtest", not_here)
        alone = sweep(imbalance, None, data, points, jobs=1)
    assert len(machines) == 4 and len({id(m) for m in machines}) == 4
    spread = sweep(imbalance, None, data, points, jobs=2)
    in_process = sweep(imbalance, None, data, points, jobs=1, host=True)
    assert alone == spread == in_process
    assert len({p.code_hash for p in alone}) == 4  # each point is its own configuration
    assert len({p.net for p in alone}) > 1 and all(p.fills for p in alone)
    with pytest.raises(ConfigError, match=r"\[params\] size: must be an integer"):
        sweep(imbalance, None, data, parse_grid(["size=big"]))


def test_every_grid_value_reaches_the_machine_as_itself() -> None:
    for spec in ("a=1", "a=-7", "a=0.50", "a=1e-3", "a=true", "a=word", 'a="two words"',
                 "a=it's"):  # fmt: skip
        value = parse_grid([spec])[0]["a"]
        assert parse_grid([f"a={param_text('a', value)}"])[0]["a"] == value, spec
    with pytest.raises(ConfigError, match="cannot be given to the machine"):
        param_text("a", {"x": 1})  # str() of a dict is no TOML inline table


def test_the_command_sorts_and_draws_the_heatmap(tmp_path: Path) -> None:
    data = tmp_path / "s.itch"
    data.write_bytes(generate(SessionSpec(events=3000, seed=2))[0])
    out, page = tmp_path / "sweep.csv", tmp_path / "sweep.html"
    grid = ["--grid", "size=100,300", "--grid", "cooldown_ns=1000000,5000000"]
    result = CliRunner().invoke(sweep_command, ["imbalance", str(data), *grid, "--out", str(out),
                                                "--html", str(page)])  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    nets = [line.split()[2] for line in lines[1:5]]
    assert [float(n) for n in nets] == sorted(map(float, nets), reverse=True)
    assert "net by size (down) x cooldown_ns (across)" in result.stdout
    assert len(out.read_text().splitlines()) == 5
    cells = Cells()
    cells.feed(page.read_text())
    assert sorted(cells.values) == sorted(nets) and len(set(nets)) == 4
    top, bottom = nets[0], nets[-1]  # the best point is drawn green, the worst red
    assert cells.values[top] == "rgb(26,150,65)" and cells.values[bottom] == "rgb(215,25,28)"
    again = tmp_path / "again.html"
    rerun = CliRunner().invoke(sweep_command, ["imbalance", str(data), *grid, "--jobs", "2",
                                               "--html", str(again)])  # fmt: skip
    assert rerun.exit_code == 0 and again.read_bytes() == page.read_bytes()
    bad = CliRunner().invoke(sweep_command, ["imbalance", str(data), "--grid", "sise=1"])
    assert bad.exit_code == 1 and "unknown parameter" in bad.output
    unknown = tmp_path / "s.bin"  # no format the OS knows: the machine's shell refuses it
    unknown.write_bytes(data.read_bytes())
    bad = CliRunner().invoke(sweep_command, ["imbalance", str(unknown), "--grid", "size=1"])
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert bad.output == ("tk: point {'size': 1}: /data/s.bin: unknown feed format (expected "
                          ".itch, .fix or .csv)\n")  # fmt: skip
