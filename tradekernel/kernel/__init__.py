"""The operating system: Python services behind hypercalls, using only buses and guest RAM."""
