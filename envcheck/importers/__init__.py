"""Importers: turn artifacts people already paste into bug reports into Snapshots (no probing, no I/O)."""
