"""Seeing inside the running OS: the persistent kernel log, the trading audit log's file, the
profiler and the system counters (issue 21).

Sits beside the services: it may use the filesystem, memory, processes and the kernel log, and
is used by the shell's commands (`log`, `prof`, `vmstat`, `top`) and by kernel/main.py, which
wires it at boot. Nothing here runs on a hot path unless a user turned it on.
"""
