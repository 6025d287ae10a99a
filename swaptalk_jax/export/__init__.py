"""`swaptalk export`: trained stages -> a standalone inference bundle (safetensors params + each
inference function serialised with `jax.export`), read back by `inference/bundle.py` with jax alone.

`functions.py` names what each stage exports (the functions of `inference.stages.Chain`, the one
inference path); `writer.py` loads the runs and writes the bundle.
"""
