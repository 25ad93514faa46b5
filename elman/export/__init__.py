"""Exporting models for other runtimes (ONNX), each export checked against PyTorch."""
