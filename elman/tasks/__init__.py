"""End-to-end tasks: each brings its model head, loss, metrics, decoding and fit/predict."""
