"""FID InceptionV3 parity against a PyTorch build of pytorch-fid's architecture, and FID statistics.

The PyTorch reference below is written from the published architecture (torchvision's InceptionV3
blocks with pytorch-fid's FIDInceptionA/C/E_1/E_2 patches), since pytorch-fid's own module cannot
import torchvision beside torch 2.13 here. Random weights and random BatchNorm statistics.
"""
import numpy as np
import pytest

from swaptalk_jax import params_file
from swaptalk_jax.metrics import fid
from swaptalk_jax.models import inception
from reference.torch_inception import fid_inception_v3 as _torch_reference


@pytest.mark.torch
@pytest.mark.slow  # 16 s on an idle 2-core CPU, over 30 s when the machine is shared
def test_inception_matches_pytorch_reference(tmp_path):
  torch = pytest.importorskip("torch")
  from swaptalk_jax.convert import inception as convert_inception
  model = _torch_reference()
  src, dst = tmp_path / "pt_inception.pth", tmp_path / "inception.safetensors"
  torch.save(model.state_dict(), src)
  convert_inception.convert(str(src), str(dst))
  variables = inception.load_variables(str(dst))

  images = np.random.default_rng(0).uniform(size=(2, 3, 72, 90)).astype(np.float32)
  with torch.no_grad():
    expected = model(torch.from_numpy(images)).numpy()
  got = fid.inception_embedder(variables)(np.transpose(images, (0, 2, 3, 1)))
  assert got.shape == (2, inception.FEATURE_DIM)
  rel = np.linalg.norm(got - expected) / np.linalg.norm(expected)
  print(f"inception parity: relative error {rel:.2e}")
  assert rel < 1e-5, rel
  assert np.std(expected) > 1e-3  # the reference is not degenerate


@pytest.mark.torch
def test_bilinear_resize_matches_torch_interpolate():
  torch = pytest.importorskip("torch")
  import torch.nn.functional as F
  rng = np.random.default_rng(1)
  for h, w in ((72, 90), (512, 400), (299, 299), (17, 300)):
    images = rng.uniform(size=(1, h, w, 3)).astype(np.float32)
    expected = F.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2), size=(299, 299),
                             mode="bilinear", align_corners=False).permute(0, 2, 3, 1).numpy()
    got = np.asarray(inception.resize_bilinear(images, 299))
    np.testing.assert_allclose(got, expected, atol=5e-7)


def test_load_variables_errors_name_file_and_source(tmp_path):
  from swaptalk_jax.convert import inception as convert_inception
  missing = tmp_path / "nope.safetensors"
  with pytest.raises(params_file.PretrainedFileError, match="pt_inception-2015-12-05"):
    inception.load_variables(str(missing))
  wrong = tmp_path / "wrong.safetensors"
  params_file.save_params(str(wrong), {"params": {"x": np.zeros(3, np.float32)}},
                        network="inception", variant=convert_inception.VARIANT)
  with pytest.raises(params_file.PretrainedFileError, match="missing"):
    inception.load_variables(str(wrong))


def test_inception_rejects_integer_and_non_rgb_images():
  import jax
  model = inception.FIDInceptionV3()
  with pytest.raises(TypeError, match="uint8"):
    jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 64, 64, 3), np.uint8))
  with pytest.raises(ValueError, match="NHWC"):
    jax.eval_shape(model.init, jax.random.key(0), np.zeros((1, 3, 64, 64), np.float32))


def test_state_dict_with_wrong_shape_is_rejected():
  from swaptalk_jax.convert import inception as convert_inception
  state = {"Conv2d_1a_3x3.conv.weight": np.zeros((32, 3, 5, 5), np.float32),
           "Mixed_7c.branch_pool.bn.running_var": np.ones(192, np.float32)}
  with pytest.raises(params_file.PretrainedFileError, match="wrong shape"):
    convert_inception.variables_from_state_dict(state)
  state["fc.weight"] = np.zeros((1000, 2048), np.float32)
  with pytest.raises(params_file.PretrainedFileError, match="1000 classes"):
    convert_inception.variables_from_state_dict(state)


# ---------------------------------------------------------------- FID statistics
def _reference_frechet(mu1, s1, mu2, s2):
  """tr(sqrt(s1 s2)) via the symmetric form sqrt(s1)^T s2 sqrt(s1), from eigendecompositions."""
  w, v = np.linalg.eigh(s1)
  root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
  return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
               - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))


def _features(seed, n=400, dim=32):
  rng = np.random.default_rng(seed)
  mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
  return rng.normal(size=(n, dim)) @ mixing + 3.0


def test_streaming_statistics_equal_numpy_in_float64():
  feats = _features(0)
  stats = fid.FeatureStats(feats.shape[1])
  for chunk in np.array_split(feats.astype(np.float32), [1, 7, 100, 101, 399]):
    stats.update(chunk)
  mu, sigma = stats.mean_and_covariance()
  feats32 = feats.astype(np.float32).astype(np.float64)
  np.testing.assert_allclose(mu, feats32.mean(0), rtol=1e-12, atol=1e-12)
  np.testing.assert_allclose(sigma, np.cov(feats32, rowvar=False), rtol=1e-10, atol=1e-12)
  mu_b, sigma_b = fid.statistics_from_batches(lambda x: x, np.array_split(feats, 7), dim=32)
  np.testing.assert_allclose(mu_b, feats.mean(0), rtol=1e-12)
  np.testing.assert_allclose(sigma_b, np.cov(feats, rowvar=False), rtol=1e-10, atol=1e-12)


def test_fid_of_set_with_itself_is_zero():
  mu, sigma = fid.statistics_of(_features(1))
  assert abs(fid.frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_fid_against_shifted_set_matches_reference():
  mu1, s1 = fid.statistics_of(_features(2))
  mu2, s2 = fid.statistics_of(_features(3) * 1.3 + 0.5)
  got = fid.frechet_distance(mu1, s1, mu2, s2)
  expected = _reference_frechet(mu1, s1, mu2, s2)
  assert got > 1.0
  assert abs(got - expected) < 1e-6 * expected, (got, expected)
  assert abs(fid.frechet_distance(mu2, s2, mu1, s1) - expected) < 1e-6 * expected


def test_fid_singular_covariances_use_eps_offset():
  rng = np.random.default_rng(4)
  low_rank = rng.normal(size=(50, 3)) @ rng.normal(size=(3, 16))  # rank 3 < 16 dims
  mu1, s1 = fid.statistics_of(low_rank)
  mu2, s2 = fid.statistics_of(low_rank[::-1] * 2.0)
  value = fid.frechet_distance(mu1, s1, mu2, s2)
  assert np.isfinite(value)
  np.testing.assert_allclose(value, _reference_frechet(mu1, s1, mu2, s2), rtol=1e-4)


def test_statistics_roundtrip_and_bad_inputs(tmp_path):
  mu, sigma = fid.statistics_of(_features(5, n=10, dim=4))
  path = str(tmp_path / "stats.npz")
  fid.save_statistics(path, mu, sigma)
  mu2, sigma2 = fid.load_statistics(path)
  np.testing.assert_array_equal(mu, mu2)
  np.testing.assert_array_equal(sigma, sigma2)
  with pytest.raises(FileNotFoundError, match="nope.npz"):
    fid.load_statistics(str(tmp_path / "nope.npz"))
  with pytest.raises(ValueError, match="at least 2"):
    fid.FeatureStats(4).update(np.zeros((1, 4))).mean_and_covariance()
  with pytest.raises(ValueError, match="mismatched"):
    fid.frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])
