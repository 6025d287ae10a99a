"""LPIPS-VGG16: parity with a PyTorch reference (torchvision layout + the lpips package's heads)."""
import importlib.util
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swaptalk_jax.convert import common
from swaptalk_jax.convert import lpips as convert_lpips
from swaptalk_jax import params_file
from swaptalk_jax.losses import perceptual
from swaptalk_jax.models import lpips


def lpips_heads_file():
  """The real LPIPS v0.1 VGG heads shipped in the lpips pip package (found without importing it:
  the package imports torchvision, which does not import beside torch 2.13 here)."""
  spec = importlib.util.find_spec("lpips")
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], "weights", "v0.1", "vgg.pth")
  return path if os.path.isfile(path) else None


# ----------------------------------------------------------------------------- torch reference
def torch_vgg16_features(seed=0):
  """torchvision's `vgg16().features` (config 'D'), random weights, same module indices."""
  torch = pytest.importorskip("torch")
  torch.manual_seed(seed)
  layers, channels = [], 3
  for item in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
    if item == "M":
      layers.append(torch.nn.MaxPool2d(2, 2))
    else:
      layers += [torch.nn.Conv2d(channels, item, 3, padding=1), torch.nn.ReLU(inplace=False)]
      channels = item
  return torch.nn.Sequential(*layers).eval()


def torch_lpips(features, head_weights, x, y):
  """LPIPS v0.1 forward (Zhang et al. 2018, lpips package): scaling layer, VGG taps after relu1_2,
  relu2_2, relu3_3, relu4_3, relu5_3, unit-normalise, squared difference, 1x1 heads, spatial mean."""
  import torch
  shift = torch.tensor([-.030, -.088, -.188]).view(1, 3, 1, 1)
  scale = torch.tensor([.458, .448, .450]).view(1, 3, 1, 1)
  tap_after = (3, 8, 15, 22, 29)  # index of each tap's ReLU in `features`

  def taps(image):
    out, h = [], (image - shift) / scale
    for index, layer in enumerate(features):
      h = layer(h)
      if index in tap_after:
        out.append(h)
      if index == tap_after[-1]:
        break
    return out

  def normalise(f):
    return f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)

  with torch.no_grad():
    total = 0
    for fx, fy, w in zip(taps(x), taps(y), head_weights):
      d = (normalise(fx) - normalise(fy)) ** 2
      total = total + torch.nn.functional.conv2d(d, w).mean(dim=(2, 3))
    return total[:, 0].numpy()


def _images(seed, batch=2, size=48):
  return np.random.default_rng(seed).uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)


def _nchw(x):
  import torch
  return torch.from_numpy(x.transpose(0, 3, 1, 2).copy())


@pytest.mark.torch
def test_parity_with_torchvision_trunk_and_lpips_heads(tmp_path):
  torch = pytest.importorskip("torch")
  features = torch_vgg16_features()
  trunk_path = str(tmp_path / "vgg16.pth")
  torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, trunk_path)
  heads_path = lpips_heads_file()
  if heads_path is None:  # random positive heads in the lpips package's layout
    heads_path = str(tmp_path / "heads.pth")
    generator = torch.Generator().manual_seed(1)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=generator) * 0.1
                for i, c in enumerate(lpips.HEAD_CHANNELS)}, heads_path, _use_new_zipfile_serialization=False)
  head_state = common.read_torch_state_dict(heads_path)
  head_weights = [torch.from_numpy(head_state[f"lin{i}.model.1.weight"]) for i in range(5)]

  dst = str(tmp_path / "lpips.safetensors")
  convert_lpips.convert(trunk_path, dst, heads=heads_path)
  params = perceptual.load_lpips_params(dst)
  x, y = _images(0), _images(1)
  ours = jax.jit(perceptual.lpips_loss)(params, x, y)
  reference = torch_lpips(features, head_weights, _nchw(x), _nchw(y))
  np.testing.assert_allclose(ours, reference, rtol=1e-5)
  # Odd sizes: pools floor like torch's.
  x, y = _images(2, size=37), _images(3, size=37)
  np.testing.assert_allclose(jax.jit(perceptual.lpips_loss)(params, x, y),
                             torch_lpips(features, head_weights, _nchw(x), _nchw(y)), rtol=1e-5)


@pytest.mark.torch
def test_full_lpips_state_dict_and_clear_errors(tmp_path):
  torch = pytest.importorskip("torch")
  features = torch_vgg16_features(seed=2)
  slices = {1: range(0, 4), 2: range(4, 9), 3: range(9, 16), 4: range(16, 23), 5: range(23, 30)}
  state = {}
  for s, indices in slices.items():
    for i in indices:
      for name, value in features[i].state_dict().items():
        state[f"net.slice{s}.{i}.{name}"] = value
  for i, c in enumerate(lpips.HEAD_CHANNELS):
    state[f"lin{i}.model.1.weight"] = torch.rand(1, c, 1, 1) * 0.1
  full = str(tmp_path / "lpips_full.pth")
  torch.save(state, full)
  convert_lpips.convert(full, str(tmp_path / "a.safetensors"))

  trunk_only = str(tmp_path / "trunk.pth")
  torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, trunk_only)
  with pytest.raises(ValueError, match="no LPIPS heads.*--heads"):
    convert_lpips.convert(trunk_only, str(tmp_path / "b.safetensors"))
  with pytest.raises(ValueError, match="not a torchvision VGG16"):
    convert_lpips.convert(_linear(tmp_path), str(tmp_path / "c.safetensors"), heads=full)


def _linear(tmp_path):
  import torch
  path = str(tmp_path / "linear.pth")
  torch.save(torch.nn.Linear(2, 2).state_dict(), path)
  return path


def test_real_lpips_heads_file_reads_without_torch():
  """The lpips package's heads use torch's legacy (pre-1.6) serialisation: read by our reader."""
  path = lpips_heads_file()
  if path is None:
    pytest.skip("the lpips package is not installed")
  state = common.read_torch_state_dict(path)
  heads = convert_lpips.head_params(state, path)
  assert [heads[f"lin{i}"]["kernel"].shape[2] for i in range(5)] == list(lpips.HEAD_CHANNELS)
  assert all(np.all(heads[f"lin{i}"]["kernel"] >= 0) for i in range(5))  # LPIPS clamps heads >= 0


# ----------------------------------------------------------------------------- the loss
@pytest.fixture(scope="module")
def params():
  shapes = lpips.lpips_param_shapes()
  values = params_file.random_params(shapes, seed=0)
  for i in range(5):  # non-negative heads, as trained LPIPS heads are
    values[f"lin{i}"]["kernel"] = np.abs(values[f"lin{i}"]["kernel"])
  return values


def test_loss_properties_grad_and_bf16(params):
  x, y = _images(4, size=32), _images(5, size=32)
  loss = jax.jit(perceptual.lpips_loss, static_argnums=3)
  d_xy, d_yx, d_xx = loss(params, x, y, jnp.float32), loss(params, y, x, jnp.float32), loss(
      params, x, x, jnp.float32)
  np.testing.assert_allclose(d_xy, d_yx, rtol=1e-5)
  np.testing.assert_allclose(d_xx, 0.0, atol=1e-7)
  assert np.all(np.asarray(d_xy) > 0)
  d_bf16 = loss(params, x, y, jnp.bfloat16)
  assert d_bf16.dtype == jnp.float32
  np.testing.assert_allclose(d_bf16, d_xy, rtol=0.05)
  # Flat images make whole ReLU feature vectors zero: the gradient must stay finite there.
  flat = jnp.full((1, 32, 32, 3), -1.0)
  grad = jax.jit(jax.grad(lambda a: perceptual.lpips_loss(params, a, flat).sum()))(flat + 0.01)
  assert np.all(np.isfinite(grad))


def test_sharded_batch(params):
  mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
  sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))
  x = jax.device_put(_images(6, batch=8, size=16), sharding)
  y = jax.device_put(_images(7, batch=8, size=16), sharding)
  replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
  device_params = jax.device_put(params, replicated)
  out = jax.jit(perceptual.lpips_loss)(device_params, x, y)
  np.testing.assert_allclose(out, jax.jit(perceptual.lpips_loss)(params, np.asarray(x), np.asarray(y)),
                             rtol=1e-5)
