"""Probes gather facts and never judge: one module per snapshot section, each bounded by a timeout."""
