"""The machine: the only package that imports unicorn."""
