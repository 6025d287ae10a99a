"""Real footage (HDTF, VoxCeleb2, any folder of videos) to the same records as the synthetic set.

Per source item: decode to 25 fps / 16 kHz (`swaptalk_jax.video`), scene cuts, face tracking and
alignment (`swaptalk_jax.face`), quality statistics, optional sync correction, records staged per
item (resumable), then one TFDS ArrayRecord build from the staged items (`build.py`).
"""
