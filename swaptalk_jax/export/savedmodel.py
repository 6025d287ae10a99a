"""A bundle as a TensorFlow SavedModel (optional, for TF Serving and other TF runtimes).

Why this path (and not ONNX): `jax2tf` with native serialisation wraps the bundle's own StableHLO
(the same `jax.export` functions, symbolic batch, cpu/cuda/tpu lowerings) in a TF `XlaCallModule`
op, so the SavedModel computes exactly what the bundle computes (the test checks equality). ONNX
has no importer for StableHLO; reaching it would need jax2tf's deprecated non-native graph mode and
tf2onnx, a second lowering with its own numerics. The SavedModel runs where TF has XLA (TF Serving,
tf.saved_model.load); TFLite cannot run XlaCallModule.

Params are non-trainable tf.Variables (a flat list per stage, the bundle's tree rebuilt inside);
each function is a signature `<stage>_<function>` taking float32 inputs with a None batch.
"""
from typing import Optional, Sequence

import jax
import numpy as np

from swaptalk_jax.errors import UserError
from swaptalk_jax.inference import bundle as bundle_lib


def write_savedmodel(bundle_path: str, out: str, stages: Optional[Sequence[str]] = None) -> list:
  """Writes the functions of `stages` (default: all) of the bundle at `bundle_path` as a SavedModel
  at `out`; returns the signature names."""
  try:
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from jax.experimental import jax2tf  # pylint: disable=import-outside-toplevel
  except ImportError as e:
    raise UserError(f"a SavedModel needs tensorflow (pip install tensorflow-cpu): {e}") from None
  loaded = bundle_lib.load_bundle(bundle_path)
  module = tf.Module()
  variables, treedefs = {}, {}
  for name in stages or list(loaded.stages):
    leaves, treedefs[name] = jax.tree.flatten(jax.tree.map(np.asarray, loaded.stage(name).params))
    variables[name] = [tf.Variable(leaf, trainable=False) for leaf in leaves]
  setattr(module, "variables_by_stage", variables)
  signatures = {}
  for name in variables:
    for fn, spec in loaded.stage(name).manifest["functions"].items():
      missing = [s for s in spec["params"] if s not in variables]
      if missing:
        raise UserError(f"{name}/{fn} needs the params of stage(s) {missing}; include them")
      signatures[f"{name}_{fn}"] = _tf_function(tf, jax2tf, loaded, name, fn, spec, variables,
                                                treedefs)
  for key, fn in signatures.items():
    setattr(module, key, fn)
  tf.saved_model.save(module, out, signatures=signatures)
  return sorted(signatures)


def _tf_function(tf, jax2tf, loaded, stage, fn, spec, variables, treedefs):
  exported = loaded.stage(stage).exported[fn]
  param_stages = spec["params"]
  counts = [len(variables[s]) for s in param_stages]

  def call(flat, *inputs):
    params, start = [], 0
    for s, n in zip(param_stages, counts):
      params.append(jax.tree.unflatten(treedefs[s], flat[start:start + n]))
      start += n
    return exported.call(*params, *inputs)

  # jax2tf serialises natively (its only mode in current jax): the bundle's StableHLO as is.
  converted = jax2tf.convert(call, with_gradient=False,
                             polymorphic_shapes=[None] + ["(b, ...)"] * len(spec["inputs"]),
                             native_serialization_platforms=tuple(exported.platforms))
  input_signature = [tf.TensorSpec([None if d == bundle_lib.BATCH_DIM else d for d in x["shape"]],
                                   tf.dtypes.as_dtype(x["dtype"]), name=name)
                     for name, x in spec["inputs"].items()]

  def run(*inputs):
    flat = [v for s in param_stages for v in variables[s]]
    return converted(flat, *inputs)
  return tf.function(run, input_signature=input_signature, autograph=False)
