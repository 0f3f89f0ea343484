"""The package manager: Debian i386 .deb packages installed onto the system's FAT volume.

A kernel service beside proc, trading and net (docs/ARCHITECTURE.md): it may use kernel/fs (the
mounted `FatFs` the kernel passes in) and nothing above it. Modules, bottom up: params.py (the
limits), control.py (Debian control format, Depends, version order), deb.py (reading a .deb:
ar, compressed control and data tarballs), source.py (where packages come from: a repository
directory today, HTTP once the network lands), resolve.py (Depends -> install order),
database.py (what is installed, under /var/lib/pkg), manager.py (install/remove with a journal,
recovery after power loss).
"""
