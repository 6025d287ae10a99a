"""Record format, TFDS builders and grain input pipelines."""
