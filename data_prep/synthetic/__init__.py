"""The built-in synthetic talking-head set: seeded identities, speech-like audio, head motion and
blinks, a fast numpy renderer with dlib-order landmarks, and exact ground truth for a cross-identity
swap and for re-synced lips (what real footage cannot give).

Entry points: `make_clip` / `synthetic_clips` (Clips for the record writer), `render`,
`sample_identity`, `sample_motion`, `synth_speech`.
"""
from data_prep.synthetic.clips import clip_name, make_clip, synthetic_clips
from data_prep.synthetic.appearance import Identity, identity_name, sample_identity
from data_prep.synthetic.motion import Motion, sample_motion
from data_prep.synthetic.renderer import render
from data_prep.synthetic.speech import synth_speech

__all__ = ["Identity", "Motion", "clip_name", "identity_name", "make_clip", "render",
           "sample_identity", "sample_motion", "synth_speech", "synthetic_clips"]
