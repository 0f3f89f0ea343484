"""The package manager's tunables, in one place: every size read from an archive or an index is
checked against one of these before memory is allocated for it."""

MAX_DEB_BYTES = 64 << 20  # a .deb file as fetched from a source
MAX_INDEX_BYTES = 16 << 20  # a Packages index
MAX_CONTROL_BYTES = 1 << 20  # control.tar, decompressed
MAX_UNPACKED_BYTES = 256 << 20  # data.tar, decompressed (also bounded by the free disk space)
MAX_MEMBERS = 20_000  # entries in data.tar
MAX_PATH_BYTES = 1024  # one path inside data.tar
UNPACK_SLACK_BYTES = 1 << 20  # tar headers and padding allowed beyond the disk's free space
DB_DIR = "/var/lib/pkg"  # the installed-package database
DEFAULT_REPO = "/var/cache/pkg"  # the repository directory `pkg install` reads by default
ARCHITECTURES = ("i386", "all")  # what this machine runs
