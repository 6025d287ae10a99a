"""Inference: source photo + target video + driving audio -> a swapped, lip-synced video.

`pipeline.generate` is the one inference path (used by `swaptalk generate`, and by eval and export);
`stages` loads the trained stages as pure jitted functions; `media` reads photos and audio and fits
the audio to the video; `faces` finds, aligns, colour-matches and pastes back the target's face.
"""
