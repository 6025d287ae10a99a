"""SyncNet (syncnet_v2) parity against a PyTorch build of syncnet_python's SyncNetModel, the MFCC
front end against python_speech_features, and the LSE offset/confidence procedure.

The PyTorch reference is written here from the published architecture (syncnet_python's
`SyncNetModel.S`); random weights and random BatchNorm statistics.
"""
import numpy as np
import pytest

from swaptalk_jax import params_file
from swaptalk_jax.metrics import lse, mfcc
from swaptalk_jax.models import syncnet
from reference.torch_syncnet import syncnet_v2 as _torch_reference


def _syncnet_python_module(name):
  """A module file of the installed syncnet_python package, loaded without its heavy __init__."""
  import importlib.util
  import os
  spec = importlib.util.find_spec("syncnet_python")
  if spec is None:
    pytest.skip("syncnet-python is not installed (pip install --no-deps syncnet-python)")
  path = os.path.join(spec.submodule_search_locations[0], f"{name}.py")
  module_spec = importlib.util.spec_from_file_location(f"_syncnet_python_{name}", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  return module


@pytest.mark.torch
def test_reference_equals_syncnet_python_shipped_model():
  """Our test reference is the shipped SyncNetModel.S: same state-dict layout, same outputs."""
  torch = pytest.importorskip("torch")
  shipped = _syncnet_python_module("SyncNetModel").S(num_layers_in_fc_layers=1024)
  ours = _torch_reference()
  shipped.load_state_dict(ours.state_dict(), strict=True)
  shipped.eval()
  rng = np.random.default_rng(1)
  frames = torch.from_numpy(rng.uniform(0, 255, size=(2, 3, 5, 224, 224)).astype(np.float32))
  coeffs = torch.from_numpy(rng.normal(size=(2, 1, 13, 20)).astype(np.float32))
  with torch.no_grad():
    np.testing.assert_array_equal(shipped.forward_lip(frames).numpy(),
                                  ours.forward_lip(frames).numpy())
    np.testing.assert_array_equal(shipped.forward_aud(coeffs).numpy(),
                                  ours.forward_aud(coeffs).numpy())


@pytest.mark.torch
def test_shifted_distances_equal_syncnet_python_calc_pdist():
  torch = pytest.importorskip("torch")
  pytest.importorskip("python_speech_features")
  calc_pdist = _syncnet_python_module("SyncNetInstance").calc_pdist
  rng = np.random.default_rng(2)
  lip, audio = (rng.normal(size=(30, 8)).astype(np.float32) for _ in range(2))
  pdist = calc_pdist(torch.from_numpy(lip), torch.from_numpy(audio), vshift=15)
  expected = torch.stack(pdist).numpy()
  np.testing.assert_allclose(lse.shifted_distances(lip, audio, 15), expected, rtol=1e-6, atol=1e-6)


def _rel(a, b):
  return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.torch
def test_syncnet_matches_pytorch_reference(tmp_path):
  torch = pytest.importorskip("torch")
  from swaptalk_jax.convert import syncnet as convert_syncnet
  model = _torch_reference()
  src, dst = tmp_path / "syncnet_v2.model", tmp_path / "syncnet.safetensors"
  torch.save(model.state_dict(), src, _use_new_zipfile_serialization=False)  # pre-1.6 format
  convert_syncnet.convert(str(src), str(dst))
  variables = syncnet.load_variables(str(dst))

  rng = np.random.default_rng(0)
  frames = rng.integers(0, 256, size=(3, 5, 224, 224, 3)).astype(np.float32)  # (N, T, H, W, BGR)
  coeffs = rng.normal(size=(3, 13, 20)).astype(np.float32) * 5
  with torch.no_grad():
    lip_ref = model.forward_lip(torch.from_numpy(frames).permute(0, 4, 1, 2, 3)).numpy()
    aud_ref = model.forward_aud(torch.from_numpy(coeffs)[:, None]).numpy()
  embed_lip, embed_audio = lse.make_embedders(variables)
  lip, aud = embed_lip(frames), embed_audio(coeffs)
  assert lip.shape == aud.shape == (3, syncnet.EMBED_DIM)
  print(f"syncnet parity: lip {_rel(lip, lip_ref):.2e}, audio {_rel(aud, aud_ref):.2e}")
  assert _rel(lip, lip_ref) < 1e-5, _rel(lip, lip_ref)
  assert _rel(aud, aud_ref) < 1e-5, _rel(aud, aud_ref)
  assert np.std(lip_ref) > 1e-3 and np.std(aud_ref) > 1e-3


def test_converter_rejects_wrong_checkpoints(tmp_path):
  from swaptalk_jax.convert import syncnet as convert_syncnet
  with pytest.raises(ValueError, match="syncnet_v2"):
    convert_syncnet.variables_from_state_dict({"fc.weight": np.zeros((2, 2), np.float32)})
  state = {"__S__.netcnnaud.0.weight": np.zeros((64, 1, 3, 3), np.float32),
           "__S__.netcnnlip.0.weight": np.zeros((96, 3, 5, 7, 7), np.float32),
           "__S__.netfclip.3.weight": np.zeros((1024, 512), np.float32)}
  with pytest.raises(params_file.PretrainedFileError, match="missing"):
    convert_syncnet.variables_from_state_dict(state)
  state["__S__.netcnnlip.2.weight"] = np.zeros(3, np.float32)  # a ReLU has no weights
  with pytest.raises(params_file.PretrainedFileError, match="netcnnlip.2.weight"):
    convert_syncnet.variables_from_state_dict(state)
  with pytest.raises(params_file.PretrainedFileError, match="syncnet_v2.model"):
    syncnet.load_variables(str(tmp_path / "syncnet.safetensors"))


# ---------------------------------------------------------------- MFCC front end
@pytest.mark.parametrize("length", [16000, 12345, 300])
def test_mfcc_matches_python_speech_features(length):
  psf = pytest.importorskip("python_speech_features")
  rng = np.random.default_rng(length)
  t = np.arange(length) / 16000
  audio = (8000 * np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t)
           + 500 * rng.normal(size=length)).astype(np.int16)
  audio[:50] = 0  # a silent stretch: the zero-energy guards must agree too
  expected = psf.mfcc(audio, 16000)
  got = mfcc.mfcc(audio, 16000)
  assert got.shape == expected.shape == (1 + max(0, -(-(length - 400) // 160)), 13)
  np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-9)


def test_mfcc_filterbank_matches_reference_at_other_rates():
  psf = pytest.importorskip("python_speech_features")
  for rate, nfft in ((16000, 512), (22050, 1024), (8000, 256)):
    np.testing.assert_allclose(mfcc.mel_filterbank(26, nfft, rate),
                               psf.get_filterbanks(26, nfft, rate), atol=1e-12)


# ---------------------------------------------------------------- LSE procedure
def _reference_scores(lip, audio, vshift):
  """syncnet_python's calc_pdist + evaluate, loop by loop."""
  n = len(lip)
  zeros = np.zeros((vshift, audio.shape[1]))
  padded = np.concatenate([zeros, audio, zeros])
  dists = [[np.sqrt(np.sum((lip[i] - padded[i + j] + 1e-6) ** 2)) for j in range(2 * vshift + 1)]
           for i in range(n)]
  mdist = np.mean(np.array(dists), axis=0)
  best = int(np.argmin(mdist))
  return vshift - best, float(np.median(mdist) - mdist[best]), float(mdist[best])


def test_lse_procedure_matches_reference_loop():
  rng = np.random.default_rng(7)
  audio = rng.normal(size=(40, 16))
  lip = np.roll(audio, 3, axis=0) + 0.3 * rng.normal(size=audio.shape)  # lips lag audio by 3
  for vshift in (15, 5):
    scores = lse.scores_from_distances(lse.shifted_distances(lip, audio, vshift), vshift)
    offset, conf, dist = _reference_scores(lip, audio, vshift)
    assert scores.offset == offset
    assert scores.offset == 3  # positive: the audio leads the video
    np.testing.assert_allclose([scores.confidence, scores.min_distance], [conf, dist], rtol=1e-12)
    assert scores.confidence > 0


def test_windows_follow_syncnet_python_indexing():
  assert lse.num_windows(100, 64000) == 95
  assert lse.num_windows(100, 640 * 50 + 639) == 45
  coeffs = np.arange(30 * 13, dtype=np.float64).reshape(30, 13)
  windows = lse.mfcc_windows(coeffs, 3)
  assert windows.shape == (3, 13, 20)
  np.testing.assert_array_equal(windows[2], coeffs[8:28].T)
  frames = np.arange(10)[:, None, None, None] * np.ones((10, 2, 2, 3))
  lips = lse.lip_windows(frames, 2, 4)
  assert lips.shape == (2, 5, 2, 2, 3) and lips[1, :, 0, 0, 0].tolist() == [3, 4, 5, 6, 7]


def test_evaluate_clip_with_stub_embedders_and_bad_inputs():
  """The clip pipeline wiring (MFCC, windows, batching, scores) with embedders we can predict."""
  rng = np.random.default_rng(3)
  frames = rng.integers(0, 256, size=(31, 224, 224, 3)).astype(np.uint8)
  audio = (rng.normal(size=31 * 640) * 1000).astype(np.int16)
  calls = []

  def embed_lip(x):
    calls.append(x.shape)
    return x.mean(axis=(1, 2, 3))[:, :1].repeat(4, axis=1)

  def embed_audio(x):
    return x[:, 1, :4]

  scores = lse.evaluate_clip((embed_lip, embed_audio), frames, audio, vshift=3, batch_size=8)
  lips = lse.lip_windows(frames, 0, 26).mean(axis=(1, 2, 3))[:, :1].repeat(4, axis=1)
  auds = lse.mfcc_windows(mfcc.mfcc(audio), 26)[:, 1, :4]
  expected = _reference_scores(lips, auds, 3)
  assert (scores.offset, scores.confidence, scores.min_distance) == pytest.approx(expected)
  assert calls == [(8, 5, 224, 224, 3)] * 4  # 26 windows in fixed-size batches
  with pytest.raises(TypeError, match="int16"):
    lse.evaluate_clip((embed_lip, embed_audio), frames, audio.astype(np.float32) / 32768)
  with pytest.raises(ValueError, match="too short"):
    lse.evaluate_clip((embed_lip, embed_audio), frames[:5], audio)
  with pytest.raises(ValueError, match="224"):
    lse.evaluate_clip((embed_lip, embed_audio), frames[:, :112], audio)


# ---------------------------------------------------------------- face crops
def test_syncnet_crops_geometry_and_padding():
  from swaptalk_jax.metrics import syncnet_crop
  frames = np.zeros((16, 400, 500, 3), np.uint8)
  frames[:, 100:240, 200:340] = 255  # the "face": a 140 x 140 box
  boxes = np.tile([200, 100, 340, 240], (16, 1))
  crops = syncnet_crop.syncnet_crops(frames, boxes)
  assert crops.shape == (16, 224, 224, 3) and crops.dtype == np.uint8
  # The box spans rows 0 .. 2/2.8 and columns 0.4/2.8 .. 2.4/2.8 of the crop.
  rows = np.flatnonzero(crops[0, :, 112, 0] > 127)
  cols = np.flatnonzero(crops[0, 80, :, 0] > 127)
  assert abs(rows[0] - 0) <= 1 and abs(rows[-1] + 1 - 160) <= 1, (rows[0], rows[-1])
  assert abs(cols[0] - 32) <= 1 and abs(cols[-1] + 1 - 192) <= 1, (cols[0], cols[-1])
  edge = syncnet_crop.syncnet_crops(frames, np.tile([0, 100, 140, 240], (16, 1)))
  assert (edge[0, 100, :20] == syncnet_crop.PAD_VALUE).all()  # beyond the frame: grey padding
  with pytest.raises(ValueError, match="boxes"):
    syncnet_crop.syncnet_crops(frames, boxes[:3])
