"""Converters from user-supplied checkpoints (PyTorch state dicts, ONNX) to Flax params files."""
