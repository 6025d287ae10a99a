"""ArcFace IResNet: parity with a PyTorch reference (state dict and ONNX paths), alignment, loss."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from swaptalk_jax.convert import arcface as convert_arcface
from swaptalk_jax import params_file
from swaptalk_jax.losses import identity
from swaptalk_jax.models import arcface


# ----------------------------------------------------------------------------- torch reference
def torch_iresnet(blocks, seed=0):
  """insightface arcface_torch's iresnet, written from the published architecture, random weights
  and random BatchNorm statistics, in eval mode."""
  torch = pytest.importorskip("torch")
  nn = torch.nn

  class IBasicBlock(nn.Module):

    def __init__(self, inplanes, planes, stride, downsample):
      super().__init__()
      self.bn1 = nn.BatchNorm2d(inplanes, eps=1e-5)
      self.conv1 = nn.Conv2d(inplanes, planes, 3, 1, 1, bias=False)
      self.bn2 = nn.BatchNorm2d(planes, eps=1e-5)
      self.prelu = nn.PReLU(planes)
      self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
      self.bn3 = nn.BatchNorm2d(planes, eps=1e-5)
      self.downsample = downsample

    def forward(self, x):
      out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
      return out + (self.downsample(x) if self.downsample is not None else x)

  class IResNet(nn.Module):

    def __init__(self, layers):
      super().__init__()
      self.inplanes = 64
      self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
      self.bn1 = nn.BatchNorm2d(64, eps=1e-5)
      self.prelu = nn.PReLU(64)
      self.layer1 = self._make_layer(64, layers[0])
      self.layer2 = self._make_layer(128, layers[1])
      self.layer3 = self._make_layer(256, layers[2])
      self.layer4 = self._make_layer(512, layers[3])
      self.bn2 = nn.BatchNorm2d(512, eps=1e-5)
      self.dropout = nn.Dropout(p=0.0)
      self.fc = nn.Linear(512 * 7 * 7, 512)
      self.features = nn.BatchNorm1d(512, eps=1e-5)

    def _make_layer(self, planes, count):
      downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, 2, bias=False),
                                 nn.BatchNorm2d(planes, eps=1e-5))
      layers = [IBasicBlock(self.inplanes, planes, 2, downsample)]
      self.inplanes = planes
      layers += [IBasicBlock(planes, planes, 1, None) for _ in range(1, count)]
      return nn.Sequential(*layers)

    def forward(self, x):
      x = self.prelu(self.bn1(self.conv1(x)))
      x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
      x = torch.flatten(self.bn2(x), 1)
      return self.features(self.fc(self.dropout(x)))

  torch.manual_seed(seed)
  model = IResNet(blocks)
  with torch.no_grad():
    for module in model.modules():
      if isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        module.weight.uniform_(0.5, 1.5)
        module.bias.uniform_(-0.2, 0.2)
        module.running_mean.uniform_(-0.2, 0.2)
        module.running_var.uniform_(0.5, 1.5)
      elif isinstance(module, nn.PReLU):
        module.weight.uniform_(0.0, 0.5)
  return model.eval()


def _relative_error(a, b):
  return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / np.max(np.abs(np.asarray(b))))


def _faces(batch=2, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (batch, 112, 112, 3)).astype(np.float32)


def _torch_embed(model, faces):
  import torch
  with torch.no_grad():
    return model(torch.from_numpy(faces.transpose(0, 3, 1, 2).copy())).numpy()


def _export_onnx(model, path):
  """The legacy TorchScript exporter in eval mode, as insightface's packs were made (it folds each
  conv's following BatchNorm into the conv)."""
  import torch
  torch.onnx.export(model, (torch.zeros(1, 3, 112, 112),), path, dynamo=False, opset_version=13,
                    input_names=["input.1"], output_names=["embedding"],
                    dynamic_axes={"input.1": {0: "batch"}, "embedding": {0: "batch"}})


# ----------------------------------------------------------------------------- parity
@pytest.mark.torch
def test_r50_state_dict_parity(tmp_path):
  torch = pytest.importorskip("torch")
  model = torch_iresnet(arcface.VARIANTS["r50"])
  path = str(tmp_path / "backbone.pth")
  torch.save(model.state_dict(), path)
  dst = str(tmp_path / "arcface_r50.safetensors")
  info = convert_arcface.convert(path, dst, variant="r50")
  assert info["variant"] == "r50"
  params, metadata = params_file.load_pretrained("arcface", dst, "r50")
  assert metadata["network"] == "arcface" and metadata["source_format"] == "torch"
  faces = _faces()
  ours = jax.jit(arcface.iresnet("r50").apply)({"params": params}, faces)
  assert _relative_error(ours, _torch_embed(model, faces)) < 1e-5
  n_params = sum(v.numel() for k, v in model.state_dict().items()
                 if "running" not in k and "num_batches" not in k)
  ours_count = sum(np.size(v) for k, v in params_file.flatten_params(params).items()
                   if not k.endswith(("/mean", "/var")))
  assert ours_count == n_params


@pytest.mark.torch
def test_onnx_parity_against_onnxruntime(tmp_path):
  """Export the torch reference the way insightface packs were made (BN folded into convs)."""
  torch = pytest.importorskip("torch")
  ort = pytest.importorskip("onnxruntime")
  model = torch_iresnet(arcface.VARIANTS["r18"], seed=1)
  path = str(tmp_path / "r18.onnx")
  _export_onnx(model, path)
  dst = str(tmp_path / "arcface_r18.safetensors")
  info = convert_arcface.convert(path, dst)
  assert info["variant"] == "r18" and info["onnx_in_graph_normalisation"] == "False"
  params, _ = params_file.load_pretrained("arcface", dst, "r18")
  faces = _faces(seed=2)
  session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
  reference = session.run(None, {"input.1": faces.transpose(0, 3, 1, 2).copy()})[0]
  import onnx
  ops = {node.op_type for node in onnx.load(path).graph.node}
  assert "BatchNormalization" in ops and "PRelu" in ops and "Gemm" in ops
  ours = jax.jit(arcface.iresnet("r18").apply)({"params": params}, faces)
  assert _relative_error(ours, reference) < 1e-5


@pytest.mark.torch
def test_onnx_with_in_graph_pixel_normalisation(tmp_path):
  """Some packs take raw [0, 255] pixels and normalise inside the graph: stepped over, checked."""
  torch = pytest.importorskip("torch")
  ort = pytest.importorskip("onnxruntime")
  body = torch_iresnet(arcface.VARIANTS["r18"], seed=3)

  class WithNormalisation(torch.nn.Module):

    def __init__(self, scale):
      super().__init__()
      self.body, self.scale = body, scale

    def forward(self, x):
      return self.body((x - 127.5) * self.scale)

  path = str(tmp_path / "norm.onnx")
  _export_onnx(WithNormalisation(1 / 127.5), path)
  params, variant, in_graph = convert_arcface.params_from_onnx(path)
  assert variant == "r18" and in_graph
  pixels = np.random.default_rng(4).uniform(0, 255, (2, 112, 112, 3)).astype(np.float32)
  session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
  reference = session.run(None, {"input.1": pixels.transpose(0, 3, 1, 2).copy()})[0]
  ours = jax.jit(arcface.iresnet("r18").apply)({"params": params}, arcface.normalise_pixels(pixels))
  assert _relative_error(ours, reference) < 1e-5

  wrong = str(tmp_path / "wrong_norm.onnx")
  _export_onnx(WithNormalisation(1 / 255.0), wrong)
  with pytest.raises(ValueError, match="preprocessing"):
    convert_arcface.params_from_onnx(wrong)


@pytest.mark.torch
def test_variant_mismatch_and_wrong_checkpoint(tmp_path):
  torch = pytest.importorskip("torch")
  model = torch_iresnet(arcface.VARIANTS["r18"])
  path = str(tmp_path / "r18.pth")
  torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
  with pytest.raises(ValueError, match="r18.*r50"):
    convert_arcface.convert(path, str(tmp_path / "x.safetensors"), variant="r50")
  not_arcface = str(tmp_path / "other.pth")
  torch.save(torch.nn.Linear(3, 4).state_dict(), not_arcface)
  with pytest.raises(ValueError, match="not a arcface_torch IResNet checkpoint"):
    convert_arcface.convert(not_arcface, str(tmp_path / "y.safetensors"))
  dst = str(tmp_path / "r18.safetensors")
  convert_arcface.convert(path, dst)  # wrapped + DataParallel prefix is fine
  with pytest.raises(params_file.PretrainedFileError, match="variant 'r18'.*expects 'r100'"):
    identity.load_arcface_params(dst, "r100")


def test_r100_structure():
  shapes = arcface.arcface_param_shapes("r100")
  count = sum(np.prod(v.shape) for k, v in params_file.flatten_params(shapes).items()
              if not k.endswith(("/mean", "/var")))
  assert arcface.variant_of_params(shapes) == "r100"
  assert 65.0e6 < count < 65.3e6  # arcface_torch r100: 65.2M parameters


# ----------------------------------------------------------------------------- alignment
def test_alignment_matches_skimage_estimate():
  transform = pytest.importorskip("skimage.transform")
  pytest.importorskip("cv2")
  landmarks = arcface.ARCFACE_TEMPLATE_112 * 2.3 + np.random.default_rng(1).normal(0, 2, (5, 2)) + 40
  reference = transform.SimilarityTransform.from_estimate(landmarks, arcface.ARCFACE_TEMPLATE_112) \
      if hasattr(transform.SimilarityTransform, "from_estimate") else None
  if reference is None:
    reference = transform.SimilarityTransform()
    reference.estimate(landmarks, arcface.ARCFACE_TEMPLATE_112)
  np.testing.assert_allclose(arcface.alignment_transform(landmarks), reference.params[:2], atol=1e-9)


# ----------------------------------------------------------------------------- identity loss
@pytest.fixture(scope="module")
def small_params():
  """A one-block-per-stage IResNet: same layers as r50, compiles in a fraction of the time."""
  return arcface.init_arcface_params(0, blocks=(1, 1, 1, 1))


def test_identity_loss_jit_grad_and_bf16(small_params):
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.uniform(-1, 1, (2, 128, 128, 3)), jnp.float32)
  y = jnp.stack([x[0], jnp.asarray(rng.uniform(-1, 1, (128, 128, 3)), jnp.float32)])
  loss_and_grad = jax.jit(jax.value_and_grad(
      lambda a, b: identity.identity_loss(small_params, a, b).sum(), argnums=0, has_aux=False))
  per_example = jax.jit(lambda a, b, dtype: identity.identity_loss(small_params, a, b, dtype=dtype),
                        static_argnums=2)
  loss = per_example(x, y, jnp.float32)
  assert loss.shape == (2,) and abs(float(loss[0])) < 1e-5 and float(loss[1]) > 1e-3
  total, grad = loss_and_grad(x, y)
  np.testing.assert_allclose(total, loss.sum(), rtol=1e-5)
  assert np.all(np.isfinite(grad)) and float(jnp.abs(grad[1]).max()) > 0
  loss_bf16 = per_example(x, y, jnp.bfloat16)
  assert loss_bf16.dtype == jnp.float32
  np.testing.assert_allclose(loss_bf16, loss, atol=0.03)


def test_region_for_landmarks_inverts_the_crop():
  """Landmarks placed where a region would put ArcFace's template give back that region."""
  region = (0.15, 0.1, 0.7)
  crop_size = 256
  landmarks = (np.array(region[1::-1]) + region[2] * arcface.ARCFACE_TEMPLATE_112 / 112) * crop_size
  np.testing.assert_allclose(identity.region_for_landmarks(landmarks, crop_size), region, atol=1e-9)
  crop = identity.crop_for_arcface(jnp.zeros((1, 256, 256, 3)), identity.DEFAULT_REGION)
  assert crop.shape == (1, 112, 112, 3)
  with pytest.raises(ValueError, match="leaves"):
    identity.crop_for_arcface(jnp.zeros((1, 256, 256, 3)), (0.5, 0.5, 0.6))


def test_missing_weights_file_is_a_clear_error(tmp_path):
  missing = str(tmp_path / "nope.safetensors")
  with pytest.raises(params_file.PretrainedFileError, match="nope.safetensors.*does not exist.*"
                     "swaptalk convert arcface.*arcface_torch"):
    identity.load_arcface_params(missing, "r50")
  lpips_file = str(tmp_path / "lpips.safetensors")
  params_file.save_params(lpips_file, {"a": np.zeros(2)}, network="lpips", variant="vgg16")
  with pytest.raises(params_file.PretrainedFileError, match="holds network 'lpips', expected 'arcface'"):
    identity.load_arcface_params(lpips_file, "r50")


def test_default_region_turns_face_module_crops_into_arcface_crops():
  """A real face aligned by the face module (256 crop) and cut by DEFAULT_REGION looks like the
  same face aligned straight to ArcFace's 112 template; a wrong region does not."""
  pytest.importorskip("dlib")
  cv2 = pytest.importorskip("cv2")
  from skimage import data
  from swaptalk_jax.face import align
  from swaptalk_jax.face import landmarks as face_landmarks
  image = data.astronaut()
  points = face_landmarks.FaceLandmarks().landmarks(image)
  config = align.AlignConfig(smooth_sigma=0.0)
  crop = align.warp_to_crop(image, align.frame_to_crop_transforms(points[None], config)[0], 256)
  direct = cv2.warpAffine(image, arcface.alignment_transform(face_landmarks.five_points(points)),
                          (112, 112), flags=cv2.INTER_LINEAR).astype(np.float32) / 127.5 - 1
  crops = jnp.asarray(crop[None].astype(np.float32) / 127.5 - 1)

  def error(region):
    return float(np.mean(np.abs(np.asarray(identity.crop_for_arcface(crops, region))[0] - direct)))

  top, left, size = identity.DEFAULT_REGION
  good = error(identity.DEFAULT_REGION)
  nudged = [error((top + dt, left + dl, size + ds)) for dt, dl, ds in
            ((0.02, 0, 0), (0, 0.02, 0), (0, -0.02, 0), (0.01, 0.01, -0.02), (0, 0, 0.02))]
  assert good < 0.1 and min(nudged) > good, (good, nudged)
