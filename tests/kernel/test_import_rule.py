"""The kernel's import rule (docs/ARCHITECTURE.md) holds: import-linter checks the contracts in
pyproject.toml (layers, no cycles at any depth, trading as a service, hardware only through
the buses). An upward import or a circle anywhere in tradekernel/kernel fails this test, with
import-linter's report of the offending chain in the captured output.

The rule only binds what it names, so the layout is checked against it too: every package and
top-level module of the kernel has a place in the layers contract (a new subsystem cannot sit
outside the rule), opens with a docstring stating its contract, and is drawn in the picture in
docs/ARCHITECTURE.md."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
KERNEL = ROOT / "tradekernel" / "kernel"
PICTURE = ROOT / "docs" / "ARCHITECTURE.md"


def kernel_parts() -> set[str]:
    """The kernel's packages and top-level modules, by dotted name."""
    parts = set()
    for path in KERNEL.iterdir():
        if path.is_dir() and (path / "__init__.py").exists():
            parts.add(f"tradekernel.kernel.{path.name}")
        elif path.suffix == ".py" and path.name != "__init__.py":
            parts.add(f"tradekernel.kernel.{path.stem}")
    return parts


def layered() -> set[str]:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["id"] == "kernel-layers"]
    return {name.strip() for layer in layers for name in layer.split("|")}


def test_the_kernel_keeps_its_import_contracts() -> None:
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert status == EXIT_STATUS_SUCCESS, "an import breaks the kernel's rule: see the report above"


def test_every_part_of_the_kernel_has_a_layer() -> None:
    outside = kernel_parts() - layered()
    assert not outside, f"not in pyproject.toml's kernel-layers contract: {sorted(outside)}"


def test_every_kernel_module_opens_with_its_contract() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for path in sorted(KERNEL.rglob("*.py"))
        if len(ast.get_docstring(ast.parse(path.read_text())) or "") < 40
    ]
    assert not missing, f"no docstring stating the module's contract: {missing}"


def test_the_picture_draws_every_package() -> None:
    picture = PICTURE.read_text().split("```")[1]  # the first fenced block
    drawn = set(re.findall(r"\b(\w+)/", picture))
    packages = {path.name for path in KERNEL.iterdir() if (path / "__init__.py").exists()}
    assert packages <= drawn, f"not drawn in docs/ARCHITECTURE.md: {sorted(packages - drawn)}"
