"""fs: files. The VFS (vfs.py: the open-file interface behind every descriptor, shared open
file descriptions, the sleep protocol), the FAT filesystem (fat.py, fat_dir.py) and its files
as open files (fatfile.py), pipes (pipe.py), device files (devfs.py), and mounting the system
disk (storage.py: ATA, partition 1, FAT).

Imports: mm, drivers and arch. Processes plug in through the protocols vfs.py and devfs.py
define (Sleeper, TerminalReader); nothing here imports proc or the shell.
"""
