"""Plots (matplotlib, the ``plot`` extra), written to files: no display is needed."""

import matplotlib

matplotlib.use("Agg")
