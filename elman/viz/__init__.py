"""Looking at models: plots written to files (matplotlib, the ``plot`` extra; no display is
needed), HTML heat maps, and the numbers behind them (activations, gate saturation, gradient
flow, saliency), which need torch only."""

try:
    import matplotlib

    matplotlib.use("Agg")
except ImportError:  # the numbers still work; a plot then says what is missing
    pass
