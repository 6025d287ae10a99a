"""Raw footage and the built-in synthetic set to TFDS ArrayRecord shards."""
