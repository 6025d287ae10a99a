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


# ---------------------------------------------------------------- PyTorch reference (tests only)
def _torch_reference():
  import torch
  from torch import nn
  import torch.nn.functional as F

  class BasicConv2d(nn.Module):
    def __init__(self, cin, cout, **kw):
      super().__init__()
      self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
      self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
      return F.relu(self.bn(self.conv(x)))

  def avg(x):
    return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)

  class A(nn.Module):
    def __init__(self, cin, pool):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
      self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
      self.branch_pool = BasicConv2d(cin, pool, kernel_size=1)

    def forward(self, x):
      return torch.cat([self.branch1x1(x), self.branch5x5_2(self.branch5x5_1(x)),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        self.branch_pool(avg(x))], 1)

  class B(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
      self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
      self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
      return torch.cat([self.branch3x3(x),
                        self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
                        F.max_pool2d(x, 3, 2)], 1)

  class C(nn.Module):
    def __init__(self, cin, c7):
      super().__init__()
      self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
      self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
      bd = self.branch7x7dbl_1(x)
      for i in range(2, 6):
        bd = getattr(self, f"branch7x7dbl_{i}")(bd)
      return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(avg(x))], 1)

  class D(nn.Module):
    def __init__(self, cin):
      super().__init__()
      self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
      self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
      self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
      self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
      self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
      b7 = self.branch7x7x3_1(x)
      for i in range(2, 5):
        b7 = getattr(self, f"branch7x7x3_{i}")(b7)
      return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, 2)], 1)

  class E(nn.Module):
    def __init__(self, cin, max_pool):
      super().__init__()
      self.max_pool = max_pool
      self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
      self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
      self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
      self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
      self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
      self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
      self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
      b3 = self.branch3x3_1(x)
      b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
      bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
      bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
      pooled = F.max_pool2d(x, 3, 1, 1) if self.max_pool else avg(x)
      return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)

  class FIDInception(nn.Module):
    def __init__(self):
      super().__init__()
      self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
      self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
      self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
      self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
      self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
      self.Mixed_5b, self.Mixed_5c, self.Mixed_5d = A(192, 32), A(256, 64), A(288, 64)
      self.Mixed_6a = B(288)
      self.Mixed_6b, self.Mixed_6c = C(768, 128), C(768, 160)
      self.Mixed_6d, self.Mixed_6e = C(768, 160), C(768, 192)
      self.Mixed_7a = D(768)
      self.Mixed_7b, self.Mixed_7c = E(1280, False), E(2048, True)
      self.fc = nn.Linear(2048, 1008)  # in the published checkpoint; unused for pool3 features

    def forward(self, images):  # NCHW in [0, 1]
      x = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
      x = 2 * x - 1
      x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
      x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(F.max_pool2d(x, 3, 2)))
      x = F.max_pool2d(x, 3, 2)
      for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
        x = getattr(self, f"Mixed_{name}")(x)
      return F.adaptive_avg_pool2d(x, 1).flatten(1)

  torch.manual_seed(0)
  model = FIDInception()
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, nn.BatchNorm2d):
        module.weight.uniform_(0.5, 1.5)
        module.bias.normal_(0.0, 0.1)
        module.running_mean.normal_(0.0, 0.1)
        module.running_var.uniform_(0.5, 1.5)
  return model.eval()


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
