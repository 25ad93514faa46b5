"""Looking at models: plots written to files (matplotlib, the ``plot`` extra; no display is
needed), HTML heat maps, and the numbers behind them (activations, gate saturation, gradient
flow, saliency), which need torch only.

Figures are built as ``matplotlib.figure.Figure`` objects, never through pyplot, so no backend
is chosen or changed: saving a PNG needs none, and the user's backend stays theirs."""
