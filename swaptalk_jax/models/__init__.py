"""Flax modules: one file per model family."""
