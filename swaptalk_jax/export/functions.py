"""What each stage exports: the stage functions of `inference.stages.Chain` (the one inference path
that generate and eval run), never a second implementation.

  vqgan   encode(vqgan_params, images [b,S,S,3] f32 in [-1,1]) -> T_VQ [b,h,w,D]
          decode(vqgan_params, tokens [b,h,w,D]) -> images [b,S,S,3]
  swap    swap(swap_params, vqgan_params, source [b,h,w,D], target [b,h,w,D]) -> T~_VQ [b,h,w,D]
  lipsync lipsync(lipsync_params, vqgan_params, tokens [b,h,w,D], reference [b,h,w,D],
                  mel [b,16,80]) -> tokens [b,h,w,D] with the lower half re-synced

Each is exported per example: `jax.vmap` over a batch-1 call of the Chain function. The model code
then only ever sees concrete shapes (models/conv_ops.py picks its convolution route by comparing
shapes, which a symbolic batch makes undecidable), and the exported function's batch dimension is
symbolic all the same. Outputs equal the Chain function's on the same batch to float tolerance
(tests/test_export.py).
"""
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.audio import mel as mel_lib
from swaptalk_jax.inference.stages import Chain, LoadedStage

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass
class StageFunction:
  stage: str              # the bundle stage that holds it
  name: str
  fn: Callable            # fn(*params, *inputs), batched over the inputs' leading axis
  params: tuple           # the stages whose params it takes, in order
  inputs: dict            # input name -> jax.ShapeDtypeStruct of ONE example (batch 1)


def cast_params(params: Any, dtype) -> Any:
  """Floating leaves to `dtype` (host numpy); integer leaves unchanged."""
  def cast(x):
    x = np.asarray(x)
    return x.astype(dtype) if np.issubdtype(x.dtype, np.floating) else x
  return jax.tree.map(cast, params)


def at_dtype(stage: LoadedStage, dtype: str) -> LoadedStage:
  """The stage with params stored and computed in `dtype` (the bundle's --dtype)."""
  if dtype not in DTYPES:
    raise ValueError(f"export dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
  return dataclasses.replace(stage, model=stage.model.clone(dtype=DTYPES[dtype]),
                             params=cast_params(stage.params, DTYPES[dtype]))


def interface_dtype(dtype):
  """Bundle functions take and return float32 whatever their params' dtype (a bf16 bundle is a
  drop-in for an f32 one); integer arrays keep their dtype."""
  return jnp.float32 if jnp.issubdtype(dtype, jnp.floating) else dtype


def per_example(fn: Callable, num_params: int, input_dtypes: tuple) -> Callable:
  """fn(*params, *inputs) on a batch -> the same, computed as a vmap over batch-1 calls of fn;
  inputs are cast to `input_dtypes` (what fn gets in the Chain), float outputs to float32."""
  def one(params, *example):
    out = fn(*params, *[x[None].astype(d) for x, d in zip(example, input_dtypes)])
    return jax.tree.map(lambda y: y[0].astype(interface_dtype(y.dtype)), out)

  def batched(*args):
    params, inputs = args[:num_params], args[num_params:]
    return jax.vmap(lambda *example: one(params, *example))(*inputs)
  return batched


def chain_functions(chain: Chain) -> list[StageFunction]:
  """The exported functions of every stage the chain holds (vqgan always; swap when present)."""
  size = chain.image_size
  image = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
  tokens = jax.eval_shape(chain.encode, chain.vqgan.params, image)
  tokens = jax.ShapeDtypeStruct(tokens.shape, tokens.dtype)
  functions = [
      StageFunction("vqgan", "encode", chain.encode, ("vqgan",), {"images": image}),
      StageFunction("vqgan", "decode", chain.decode, ("vqgan",), {"tokens": tokens}),
  ]
  if chain.swap is not None:
    functions.append(StageFunction("swap", "swap", chain.swap_fn, ("swap", "vqgan"),
                                   {"source": tokens, "target": tokens}))
  if chain.lipsync is not None:
    mel = jax.ShapeDtypeStruct((1, mel_lib.DEFAULT.window_steps, mel_lib.DEFAULT.num_mels),
                               jnp.float32)
    functions.append(StageFunction("lipsync", "lipsync", chain.lipsync_fn, ("lipsync", "vqgan"),
                                   {"tokens": tokens, "reference": tokens, "mel": mel}))
  return functions
