"""What the tests and the benchmarks share: PyTorch builds of the networks we port (parity
references: torch_inception.py, torch_syncnet.py) and test media from registry-shipped real
assets (media.py: talking videos, speech, broken files)."""
