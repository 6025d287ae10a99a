"""conv_ops.conv2d: values and gradients equal lax's (and torch's), under jit/vmap/remat/sharding."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
from jax.test_util import check_grads

from swaptalk_jax.models import conv_ops

# (input NHWC, kernel HWIO, strides, padding): the VQGAN / PatchGAN cases plus odd sizes.
CASES = [
    ((2, 9, 9, 5), (3, 3, 5, 6), (1, 1), "SAME"),
    ((2, 10, 10, 4), (3, 3, 4, 4), (2, 2), ((0, 1), (0, 1))),  # taming downsample
    ((1, 11, 9, 3), (4, 4, 3, 8), (2, 2), ((1, 1), (1, 1))),  # PatchGAN, odd size
    ((1, 8, 8, 6), (4, 4, 6, 2), (1, 1), ((1, 2), (1, 2))),  # PatchGAN stride-1 head
    ((2, 7, 7, 6), (1, 1, 6, 5), (1, 1), "SAME"),  # shortcut / attention projections
    ((1, 8, 8, 4), (1, 1, 4, 3), (2, 2), "VALID"),
    ((1, 9, 8, 3), (3, 3, 3, 4), (1, 1), "VALID"),
    ((1, 9, 9, 3), (3, 3, 3, 4), (2, 2), "SAME"),
    ((1, 8, 10, 2), (3, 3, 2, 3), (1, 2), ((2, 0), (1, 3))),  # asymmetric, mixed strides
    ((1, 8, 8, 4), (3, 3, 4, 4), (1, 1), ((-1, 1), (1, 1))),  # negative padding crops
    ((1, 6, 7, 64), (3, 3, 64, 8), (2, 2), ((0, 1), (0, 1))),  # wide: kernel-row scan path
]
CASE_IDS = [f"x{c[0]}_k{c[1][:2]}_s{c[2]}_{c[3]}" for c in CASES]


def make_inputs(x_shape, k_shape, dtype=jnp.float32, seed=0):
  kx, kk = jax.random.split(jax.random.key(seed))
  x = jax.random.normal(kx, x_shape, jnp.float32)
  kernel = jax.random.normal(kk, k_shape, jnp.float32) / np.sqrt(np.prod(k_shape[:3]))
  return x.astype(dtype), kernel.astype(dtype)


def lax_reference(x, kernel, strides, padding):
  pads = conv_ops.explicit_padding(padding, x.shape, kernel.shape, strides)
  return conv_ops.lax_conv2d(x, kernel, strides, pads)


def value_and_grads(conv, x, kernel, strides, padding, cotangent):
  """conv's output and its VJP at `cotangent` (call inside jit)."""
  y, vjp = jax.vjp(lambda x, k: conv(x, k, strides, padding), x, kernel)
  return (y,) + vjp(cotangent)


def ours_and_reference(x, kernel, strides, padding, cotangent, reference_dtype=None):
  """(ours, lax's) outputs and VJPs in one jit (one compile: these tests are compile-bound).

  With `reference_dtype`, lax runs on the same values cast to that dtype.
  """
  def run(x, kernel, cotangent):
    ours = value_and_grads(conv_ops.conv2d, x, kernel, strides, padding, cotangent)
    if reference_dtype is not None:
      x, kernel, cotangent = (a.astype(reference_dtype) for a in (x, kernel, cotangent))
    return ours, value_and_grads(lax_reference, x, kernel, strides, padding, cotangent)
  return jax.jit(run)(x, kernel, cotangent)


def assert_close(actual, expected, rtol):
  actual, expected = np.asarray(actual, np.float32), np.asarray(expected, np.float32)
  scale = max(float(np.max(np.abs(expected))), 1e-6)
  np.testing.assert_allclose(actual / scale, expected / scale, atol=rtol, rtol=0)


@pytest.mark.parametrize("x_shape,k_shape,strides,padding", CASES, ids=CASE_IDS)
def test_value_and_grads_match_lax_f32(x_shape, k_shape, strides, padding):
  x, kernel = make_inputs(x_shape, k_shape)
  y_shape = jax.eval_shape(lambda: lax_reference(x, kernel, strides, padding)).shape
  cotangent = jax.random.normal(jax.random.key(7), y_shape)
  ours, ref = ours_and_reference(x, kernel, strides, padding, cotangent)
  for name, a, b in zip(("y", "dx", "dkernel"), ours, ref):
    assert a.shape == b.shape and a.dtype == b.dtype, name
    assert_close(a, b, rtol=2e-6)


@pytest.mark.parametrize("x_shape,k_shape,strides,padding",
                         [CASES[i] for i in (1, 2, 4, 8, 9)], ids=[CASE_IDS[i] for i in (1, 2, 4, 8, 9)])
def test_row_by_row_weight_grad_matches_lax(x_shape, k_shape, strides, padding, monkeypatch):
  """Wide layers take the kernel-row scan instead of one im2col matmul; force it on small shapes."""
  monkeypatch.setattr(conv_ops, "MAX_IM2COL_WIDTH", 0)
  x, kernel = make_inputs(x_shape, k_shape)
  y_shape = jax.eval_shape(lambda: lax_reference(x, kernel, strides, padding)).shape
  cotangent = jax.random.normal(jax.random.key(7), y_shape)
  (_, _, ours), (_, _, ref) = ours_and_reference(x, kernel, strides, padding, cotangent)
  assert_close(ours, ref, rtol=2e-6)


@pytest.mark.parametrize("x_shape,k_shape,strides,padding",
                         [CASES[i] for i in (0, 2, 4, 10)], ids=[CASE_IDS[i] for i in (0, 2, 4, 10)])
def test_bf16_grads_match_f32_math(x_shape, k_shape, strides, padding):
  """bf16 compute: dtype kept; error vs f32 math on the same (bf16-rounded) values at bf16 level."""
  x, kernel = make_inputs(x_shape, k_shape, jnp.bfloat16)
  y_shape = jax.eval_shape(lambda: lax_reference(x, kernel, strides, padding)).shape
  cotangent = jax.random.normal(jax.random.key(7), y_shape).astype(jnp.bfloat16)
  ours, exact = ours_and_reference(x, kernel, strides, padding, cotangent, jnp.float32)
  for name, a, b in zip(("y", "dx", "dkernel"), ours, exact):
    assert a.dtype == jnp.bfloat16, name
    assert_close(a, b, rtol=1e-2)


def test_weight_grad_uses_f32_accumulation_in_bf16():
  """A long bf16 sum: ours (f32 accumulation, one rounding) stays within bf16 rounding of exact."""
  x, kernel = make_inputs((1, 64, 64, 4), (3, 3, 4, 4), jnp.bfloat16)
  cotangent = jnp.ones((1, 64, 64, 4), jnp.bfloat16)
  (_, _, dk), (_, _, exact) = ours_and_reference(x, kernel, (1, 1), "SAME", cotangent, jnp.float32)
  assert_close(dk, exact, rtol=4e-3)


def test_check_grads_small():
  x, kernel = make_inputs((1, 5, 6, 2), (3, 3, 2, 3), seed=3)
  for strides, padding in (((1, 1), "SAME"), ((2, 2), ((0, 1), (0, 1)))):
    conv = functools.partial(conv_ops.conv2d, strides=strides, padding=padding)
    check_grads(conv, (x, kernel), order=1, modes=["rev"], atol=2e-2, rtol=2e-2)


def test_composes_with_vmap_and_remat():
  x, kernel = make_inputs((3, 2, 8, 8, 4), (3, 3, 4, 5))  # Leading axis for vmap.

  def loss(conv, x, kernel):
    return jnp.sum(jnp.sin(conv(x, kernel, (2, 2), ((0, 1), (0, 1)))))

  def per_example_grads(conv):
    return jax.vmap(jax.grad(lambda x, k: loss(conv, x, k), argnums=(0, 1)), in_axes=(0, None))

  remat_conv = jax.checkpoint(conv_ops.conv2d, static_argnums=(2, 3))
  ours, ref, remat = jax.jit(lambda x, k: [per_example_grads(conv)(x, k) for conv in (
      conv_ops.conv2d, lax_reference, remat_conv)])(x, kernel)
  for a, b, c in zip(ours, ref, remat):
    assert_close(a, b, rtol=2e-6)
    assert_close(c, b, rtol=2e-6)


def test_sharded_matches_unsharded():
  """Batch over `data`, kernel output channels over `model`, 8 fake CPU devices."""
  mesh = jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto, AxisType.Auto))
  x, kernel = make_inputs((8, 12, 12, 4), (3, 3, 4, 6))
  cotangent = jax.random.normal(jax.random.key(2), (8, 6, 6, 6))

  def step(x, kernel, cotangent):
    y, vjp = jax.vjp(lambda x, k: conv_ops.conv2d(x, k, (2, 2), ((0, 1), (0, 1))), x, kernel)
    return (y,) + vjp(cotangent)

  unsharded = jax.jit(step)(x, kernel, cotangent)
  x_s = jax.device_put(x, NamedSharding(mesh, P("data")))
  kernel_s = jax.device_put(kernel, NamedSharding(mesh, P(None, None, None, "model")))
  cotangent_s = jax.device_put(cotangent, NamedSharding(mesh, P("data")))
  with jax.set_mesh(mesh):
    sharded = jax.jit(step)(x_s, kernel_s, cotangent_s)
  assert len(sharded[2].sharding.device_set) == 8
  for a, b in zip(sharded, unsharded):
    assert_close(a, b, rtol=2e-6)


def lowered_text(platform):
  x, kernel = make_inputs((1, 8, 8, 4), (3, 3, 4, 4))
  grad = jax.jit(jax.grad(lambda x, k: jnp.sum(conv_ops.conv2d(x, k) ** 2), argnums=1))
  return jax.export.export(grad, platforms=[platform])(x, kernel).mlir_module()


def test_cpu_takes_matmul_path_gpu_and_tpu_take_lax():
  """The per-tap loop (a while op) is in CPU lowering only; GPU/TPU get lax's weight-grad conv."""
  assert "stablehlo.while" in lowered_text("cpu")
  for platform in ("cuda", "tpu"):
    text = lowered_text(platform)
    assert "stablehlo.while" not in text
    assert text.count("stablehlo.convolution") == 2  # Forward and lax's weight-gradient conv.


@pytest.mark.parametrize("x_shape,k_shape,uses_matmuls", [
    ((1, 256, 256, 128), (3, 3, 128, 128), True),  # Large activations.
    ((1, 256, 256, 64), (3, 3, 64, 3), True),  # Few output channels.
    ((2, 64, 64, 256), (3, 3, 256, 256), False),  # XLA's own weight gradient is as fast.
    ((1, 256, 256, 3), (3, 3, 3, 64), False),
])
def test_cpu_dispatch_follows_the_measured_rule(x_shape, k_shape, uses_matmuls):
  assert conv_ops.matmul_weight_grad_pays_off(x_shape, k_shape) == uses_matmuls
  x, kernel = jax.ShapeDtypeStruct(x_shape, jnp.float32), jax.ShapeDtypeStruct(k_shape, jnp.float32)
  grad = jax.jit(jax.grad(lambda x, k: jnp.sum(conv_ops.conv2d(x, k)), argnums=1))
  assert ("stablehlo.while" in grad.lower(x, kernel).as_text()) == uses_matmuls


@pytest.mark.parametrize("x_shape,k_shape,strides,padding", CASES[:3], ids=CASE_IDS[:3])
def test_bad_inputs_raise(x_shape, k_shape, strides, padding):
  x, kernel = make_inputs(x_shape, k_shape)
  with pytest.raises(ValueError, match="matching channels"):
    conv_ops.conv2d(x[..., :-1], kernel, strides, padding)
  with pytest.raises(ValueError, match="dtypes differ"):
    conv_ops.conv2d(x.astype(jnp.bfloat16), kernel, strides, padding)
  with pytest.raises(ValueError, match="2 spatial dims"):
    conv_ops.conv2d(x, kernel, strides, ((1, 1),))


@pytest.mark.torch
@pytest.mark.parametrize("x_shape,k_shape,strides,padding", CASES[:5], ids=CASE_IDS[:5])
def test_matches_torch(x_shape, k_shape, strides, padding):
  torch = pytest.importorskip("torch")
  x, kernel = make_inputs(x_shape, k_shape)
  pads = conv_ops.explicit_padding(padding, x.shape, kernel.shape, strides)
  y_shape = jax.eval_shape(lambda: lax_reference(x, kernel, strides, padding)).shape
  cotangent = jax.random.normal(jax.random.key(7), y_shape)
  y, dx, dk = jax.jit(functools.partial(value_and_grads, conv_ops.conv2d, strides=strides,
                                         padding=padding))(x, kernel, cotangent=cotangent)

  xt = torch.tensor(np.asarray(x).transpose(0, 3, 1, 2), requires_grad=True)
  kt = torch.tensor(np.asarray(kernel).transpose(3, 2, 0, 1), requires_grad=True)
  (top, bottom), (left, right) = pads
  yt = torch.nn.functional.conv2d(torch.nn.functional.pad(xt, (left, right, top, bottom)), kt,
                                  stride=strides)
  yt.backward(torch.tensor(np.asarray(cotangent).transpose(0, 3, 1, 2)))
  assert_close(y, yt.detach().numpy().transpose(0, 2, 3, 1), rtol=2e-6)
  assert_close(dx, xt.grad.numpy().transpose(0, 2, 3, 1), rtol=2e-6)
  assert_close(dk, kt.grad.numpy().transpose(2, 3, 1, 0), rtol=2e-6)


@pytest.mark.parametrize("x_shape,out_channels", [((2, 5, 7, 6), 4), ((1, 8, 8, 64), 16)])
def test_upsample_conv_equals_conv_of_the_nearest_upsampled_image(x_shape, out_channels):
  """The sub-pixel form (one 2x2 conv on the input grid) = upsample 2x, then 3x3 SAME conv."""
  x, kernel = make_inputs(x_shape, (3, 3, x_shape[-1], out_channels))

  def plain(x, kernel):
    up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
    return lax_reference(up, kernel, (1, 1), "SAME")

  out_shape = (x_shape[0], 2 * x_shape[1], 2 * x_shape[2], out_channels)
  cotangent = jax.random.normal(jax.random.key(3), out_shape)

  def run(x, kernel):
    both = []
    for conv in (conv_ops.upsample2x_conv2d, plain):
      y, vjp = jax.vjp(conv, x, kernel)
      both.append((y,) + vjp(cotangent))
    return both
  ours, reference = jax.jit(run)(x, kernel)
  assert ours[0].shape == out_shape
  for actual, expected in zip(ours, reference):
    assert_close(actual, expected, rtol=2e-6)
  with pytest.raises(ValueError, match="3x3 kernel"):
    conv_ops.upsample2x_conv2d(x, kernel[:2])
