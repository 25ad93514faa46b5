"""ONNX graphs of recurrent layers and their checks (imports nn only)."""
