"""Chip models, one per file, each behind the Device interface in base.py."""
