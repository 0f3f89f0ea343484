"""The operating system: Python services reached by hypercalls, using only buses and guest memory."""
