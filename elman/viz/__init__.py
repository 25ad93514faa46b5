"""Plots (matplotlib, the ``plot`` extra)."""
