"""The one 2-D convolution every model uses (NHWC activations, HWIO kernels).

Every model's convolution goes through `conv2d`, so its backward pass is tuned here once.

Why a custom VJP: XLA:CPU computes a convolution's weight gradient as a convolution whose "kernel" is
the whole output-gradient image and whose output is the tiny kh x kw window. Its CPU conv kernels
handle that well while the operands are small, but fall off a cliff for large activations (at
256 px x 128 channels: ~1/5 of the forward's rate) and for few output channels (an RGB output
conv: ~1/20). See `matmul_weight_grad_pays_off` and benchmarks/conv.py. For those shapes the
weight gradient is written as one matmul per kernel tap,
  dK[i, j] = sum over (n, h, w) of g[n, h, w, :]^T x_padded[n, i + s*h, j + s*w, :],
which runs near the CPU's matmul rate. Same products, same sum: only the order of the f32
accumulation differs, so results match lax to float tolerance. The input gradient stays XLA's own
transposed convolution (as fast as the forward on CPU), and so does the whole VJP of other shapes.

Why `lax.platform_dependent`: TPU and GPU compilers handle the weight-gradient convolution well
(and fuse it), so only CPU lowering takes the matmul route. The choice is made when lowering for
a platform, not from the process's default backend, so a function jitted or exported for GPU/TPU
from a CPU host still gets the plain lax path. The unused branch is constant-folded away by XLA.
"""
from typing import Sequence, Tuple, Union

import jax
import jax.numpy as jnp
from jax import lax

DIMENSION_NUMBERS = ("NHWC", "HWIO", "NHWC")
Padding = Union[str, Sequence[Tuple[int, int]]]


def explicit_padding(padding: Padding, x_shape, kernel_shape, strides) -> Tuple[Tuple[int, int], ...]:
  """('SAME' | 'VALID' | [(lo, hi), (lo, hi)]) -> ((lo, hi), (lo, hi)) for the two spatial dims."""
  if isinstance(padding, str):
    pads = lax.padtype_to_pads(x_shape[1:3], kernel_shape[:2], strides, padding)
  else:
    pads = padding
  pads = tuple((int(lo), int(hi)) for lo, hi in pads)
  if len(pads) != 2:
    raise ValueError(f"conv2d needs padding for 2 spatial dims, got {padding!r}")
  return pads


def lax_conv2d(x: jax.Array, kernel: jax.Array, strides, padding) -> jax.Array:
  """The plain XLA convolution (the reference and the TPU/GPU path)."""
  return lax.conv_general_dilated(
      x, kernel, window_strides=tuple(strides), padding=padding, dimension_numbers=DIMENSION_NUMBERS)


# Weight-gradient matmuls whose width (taps x input channels) is at most this take all taps in
# one matmul (im2col): with few input channels a matmul per tap would be too narrow to run fast,
# and the stacked windows are small.
MAX_IM2COL_WIDTH = 512
# Where XLA:CPU's own weight-gradient conv falls behind the matmuls (jax 0.10.2, AMD
# EPYC, 2 threads; CPU ms, lax vs matmuls): 1x256x256x128->128 1021 vs 311, 2x256x256x64->64 251
# vs 213, 1x256x256x128 stride 2 168 vs 101, 1x256x256x64->3 154 vs 32; but 1x256x256x64->64 77 vs
# 101, 2x128x128x64->64 28 vs 37, and level below. The cliff follows activation size (past the
# last-level cache) and narrow outputs, hence these two thresholds.
MIN_MATMUL_INPUT_ELEMENTS = 6 * 2 ** 20
MAX_LAX_OUTPUT_CHANNELS = 15


def matmul_weight_grad_pays_off(x_shape, kernel_shape) -> bool:
  """Whether the per-tap matmul weight gradient beats XLA:CPU's for this conv (measured above)."""
  n, h, w, c = x_shape
  return n * h * w * c >= MIN_MATMUL_INPUT_ELEMENTS or kernel_shape[3] <= MAX_LAX_OUTPUT_CHANNELS


def weight_grad_as_matmuls(x: jax.Array, g: jax.Array, kernel_shape, strides, padding) -> jax.Array:
  """d(loss)/d(kernel) of `lax_conv2d` as (O x NHW) @ (NHW x C) matmuls, one per kernel tap.

  `g` is the output gradient; it is transposed once, outside the loop, to the matmul's row-major
  (O, N, H, W) lhs. A `lax.scan` runs over the taps: each step copies one input window (a strided
  slice of the padded input, contiguous after the split into stride phases below) and does one
  matmul, so one window is live at a time. (As a Python loop, XLA:CPU makes every window copy up
  front: 5x the memory of lax's backward at 256 px, and slower; stacking a kernel row's windows
  per step made a slow concatenate.) Narrow inputs (few channels) take all taps in one im2col
  matmul instead. Products accumulate in f32 whatever the compute dtype; bf16 operands stay bf16
  (twice the f32 rate here). The matmul stays inside the loop body even with one step: there XLA
  cannot fold the final transpose into it, which would make XLA:CPU pick its fallback dot that has
  no bf16 x bf16 -> f32 kernel.
  """
  kh, kw, c, o = kernel_shape
  sh, sw = strides
  n, ho, wo, _ = g.shape
  (top, bottom), (left, right) = padding
  g_t = jnp.transpose(g, (3, 0, 1, 2))  # (O, N, Ho, Wo)
  contract_nhw = (((1, 2, 3), (0, 1, 2)), ((), ()))
  # Pad to whole stride phases, then split rows and columns by phase: tap (i, j) reads the
  # contiguous window starting at (i // sh, j // sw) of phase (i % sh, j % sw).
  rows, cols = x.shape[1] + top + bottom, x.shape[2] + left + right
  extra_rows, extra_cols = -rows % sh, -cols % sw
  x_padded = lax.pad(x, jnp.zeros((), x.dtype),
                     ((0, 0, 0), (top, bottom + extra_rows, 0), (left, right + extra_cols, 0), (0, 0, 0)))
  phases = x_padded.reshape(n, (rows + extra_rows) // sh, sh, (cols + extra_cols) // sw, sw, c)
  phases = jnp.transpose(phases, (2, 4, 0, 1, 3, 5))  # (sh, sw, N, rows/sh, cols/sw, C)
  taps_per_step = kh * kw if kh * kw * c <= MAX_IM2COL_WIDTH else 1

  def window(tap):
    i, j = tap // kw, tap % kw
    start = (i % sh, j % sw, 0, i // sh, j // sw, 0)
    return lax.dynamic_slice(phases, start, (1, 1, n, ho, wo, c)).reshape(n, ho, wo, c)

  def step_grad(carry, step):
    first = step * taps_per_step
    windows = jnp.concatenate([window(first + t) for t in range(taps_per_step)], axis=-1)
    return carry, lax.dot_general(g_t, windows, contract_nhw, preferred_element_type=jnp.float32)

  steps = kh * kw // taps_per_step
  _, grads = lax.scan(step_grad, None, jnp.arange(steps))  # (steps, O, taps*C)
  grad = grads.reshape(steps, o, taps_per_step, c).transpose(0, 2, 3, 1).reshape(kh, kw, c, o)
  return grad.astype(x.dtype)  # conv2d requires kernel.dtype == x.dtype.


def _matmul_weight_grad_conv(x, kernel, strides, padding):
  """`lax_conv2d` whose VJP computes the weight gradient with `weight_grad_as_matmuls` (CPU path)."""

  @jax.custom_vjp
  def conv(x, kernel):
    return lax_conv2d(x, kernel, strides, padding)

  def conv_fwd(x, kernel):
    return lax_conv2d(x, kernel, strides, padding), (x, kernel)

  def conv_bwd(residuals, g):
    x, kernel = residuals
    (grad_x,) = jax.linear_transpose(lambda x: lax_conv2d(x, kernel, strides, padding), x)(g)
    grad_kernel = weight_grad_as_matmuls(x, g, kernel.shape, strides, padding)
    return grad_x, grad_kernel

  conv.defvjp(conv_fwd, conv_bwd)
  return conv(x, kernel)


def conv2d(x: jax.Array, kernel: jax.Array, strides=(1, 1), padding: Padding = "SAME") -> jax.Array:
  """NHWC x HWIO -> NHWC convolution, equal to `lax.conv_general_dilated`, fast to train on CPU."""
  if x.ndim != 4 or kernel.ndim != 4 or x.shape[-1] != kernel.shape[2]:
    raise ValueError(f"conv2d needs NHWC x HWIO with matching channels, got {x.shape} x {kernel.shape}")
  if x.dtype != kernel.dtype:
    raise ValueError(f"conv2d input and kernel dtypes differ: {x.dtype} vs {kernel.dtype}")
  strides = tuple(int(s) for s in strides)
  padding = explicit_padding(padding, x.shape, kernel.shape, strides)
  if not matmul_weight_grad_pays_off(x.shape, kernel.shape):
    return lax_conv2d(x, kernel, strides, padding)
  return lax.platform_dependent(
      x, kernel,
      cpu=lambda x, k: _matmul_weight_grad_conv(x, k, strides, padding),
      default=lambda x, k: lax_conv2d(x, k, strides, padding))


# Nearest 2x upsampling followed by a 3x3 SAME convolution, rewritten on the low-resolution grid.
# Output pixel (2i + a, 2j + b) of phase (a, b) sees only two distinct input rows and columns:
# phase 0 reads input offsets (-1, 0) with taps (K[0], K[1] + K[2]); phase 1 reads (0, +1) with
# (K[0] + K[1], K[2]). _PHASE_TAPS[a, t, d] says which of the 3x3 kernel's rows d add into tap t.
_PHASE_TAPS = ((( 1, 0, 0), (0, 1, 1)),
               (( 1, 1, 0), (0, 0, 1)))


def upsample2x_conv2d(x: jax.Array, kernel: jax.Array) -> jax.Array:
  """conv2d(nearest_upsample_2x(x), kernel) for a 3x3 kernel, SAME padding, without the upsample.

  All four output phases come from one 2x2 convolution of `x` (padded by one pixel) into 4 x O
  channels: 16 taps per input-pixel group instead of the 36 the upsampled image costs, i.e.
  ~2.25x fewer FLOPs, and the 4x larger upsampled input never exists. Equal to the plain form up
  to float rounding (kernel taps are summed before the products). Same on every platform.
  """
  if kernel.shape[:2] != (3, 3):
    raise ValueError(f"upsample2x_conv2d needs a 3x3 kernel, got {kernel.shape}")
  n, h, w, _ = x.shape
  c, o = kernel.shape[2:]
  taps = jnp.asarray(_PHASE_TAPS, kernel.dtype)                        # [phase, tap, 3]
  phase_kernel = jnp.einsum("atk,bsl,klco->tscabo", taps, taps, kernel)  # [2, 2, C, 2, 2, O]
  phase_kernel = phase_kernel.reshape(2, 2, c, 4 * o)
  # Padding as its own op, the conv VALID: with the padding inside the 2x2 conv, XLA:CPU writes
  # its weight gradient as a kernel-reversed conv that no fast kernel takes (~25x slower).
  x = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  y = conv2d(x, phase_kernel, (1, 1), "VALID")                          # [N, H+1, W+1, 4*O]
  y = y.reshape(n, h + 1, w + 1, 2, 2, o)
  # Phase (a, b) of output pixel (i, j) is y[i + a, j + b, a, b].
  rows = [jnp.stack([y[:, a:a + h, b:b + w, a, b] for b in (0, 1)], axis=3) for a in (0, 1)]
  out = jnp.stack(rows, axis=2)                                          # [N, H, 2, W, 2, O]
  return out.reshape(n, 2 * h, 2 * w, o)
