"""Metrics: one file each, a pure array-level core under a thin ``compute_*`` wrapper."""
