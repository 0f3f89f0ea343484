"""`compile FILE.c [-o PROGRAM]` without a compiler on the disk: one line that says what is
missing and how to get it, and nothing run (tests/pkg/test_toolchain.py compiles with tcc)."""

from __future__ import annotations

from tests.system.harness import BootedPc


def test_compile_without_tcc_says_how_to_get_it(tmp_path) -> None:  # noqa: ANN001
    tk = BootedPc(tmp_path).boot()
    tk.pc.kernel.fs.write_file("/algo.c", b"int main(void) { return 0; }\n")
    assert tk.output("compile algo.c") == [
        "compile: no C compiler: /usr/bin/tcc is not installed (pkg install tcc)"
    ]
    assert not tk.pc.kernel.fs.exists("/algo")
    assert tk.output("compile -o") == [
        "compile: -o needs a program name", "usage: compile FILE.c [-o PROGRAM]"
    ]
