"""shell: the commands. The shell itself (shell.py: line parsing, quoting, redirection, Output,
UsageError, the built-ins), file commands (files.py) and the editor, program commands and
pipelines (programs.py), job control (jobs.py), top, the memory commands (memory.py) and the
trading desk's commands (trading.py).

Imports: any service below it (proc, trading, fs, mm, drivers, arch). Nothing imports the
shell but main.py, which wires it to the services.
"""
