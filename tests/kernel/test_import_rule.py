"""The kernel's import rule (docs/ARCHITECTURE.md) holds: import-linter checks the contracts in
pyproject.toml (layers, no cycles at any depth, trading as a service, hardware only through
the buses). An upward import or a circle anywhere in tradekernel/kernel fails this test, with
import-linter's report of the offending chain in the captured output."""

from __future__ import annotations

from pathlib import Path

from importlinter.cli import EXIT_STATUS_SUCCESS, lint_imports

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_the_kernel_keeps_its_import_contracts() -> None:
    status = lint_imports(config_filename=str(PYPROJECT), no_cache=True, no_logo=True)
    assert status == EXIT_STATUS_SUCCESS, "an import breaks the kernel's rule: see the report above"
