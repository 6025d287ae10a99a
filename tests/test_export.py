"""`swaptalk export` bundles: outputs equal the inference Chain's (batch 1 and 5 through one
serialised function), the loader runs where flax, orbax and the trainers cannot be imported, bf16
halves the params at a measured accuracy cost, and bad bundles fail in one line.

Uses the session's trained micro VQGAN (`tiny_vqgan`, 16x16 token grid at 32 px) and swap and
lip-sync runs with random params over it (tests/generate_helpers.py: the layout `swaptalk train`
writes).
"""
import json
import os
import shutil
import subprocess
import sys
import textwrap

import jax
import numpy as np
import pytest

from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.export import writer
from swaptalk_jax.inference import bundle, stages


@pytest.fixture(scope="module")
def run_dirs(tiny_vqgan, tmp_path_factory):
  import generate_helpers
  swap = generate_helpers.random_swap_run(tmp_path_factory.mktemp("swap_run"), tiny_vqgan.workdir)
  lipsync = generate_helpers.random_lipsync_run(tmp_path_factory.mktemp("lipsync_run"),
                                                tiny_vqgan.workdir)
  return {"vqgan": tiny_vqgan.workdir, "swap": swap, "lipsync": lipsync}


@pytest.fixture(scope="module")
def vqgan_bundle(run_dirs, tmp_path_factory):
  """An f32 bundle of all three inference stages."""
  out = str(tmp_path_factory.mktemp("bundles") / "f32")
  writer.export_bundle(out, run_dirs)
  return out


@pytest.fixture(scope="module")
def loaded(vqgan_bundle):
  return bundle.load_bundle(vqgan_bundle)


@pytest.fixture(scope="module")
def chain(run_dirs):
  """The training code's inference path (flax modules), at the batch the tests' host calls use."""
  vqgan = stages.load_vqgan(run_dirs["vqgan"])
  return stages.Chain(vqgan=vqgan, swap=stages.load_swap(run_dirs["swap"], vqgan),
                      lipsync=stages.load_lipsync(run_dirs["lipsync"], vqgan), batch_size=5)


def _images(n, size=32, seed=0):
  return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype(np.float32)


def _rel(a, b):
  return float(np.max(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)))
               / (np.max(np.abs(np.asarray(b, np.float32))) + 1e-12))


def test_manifest_and_exported_signature(vqgan_bundle, loaded, tiny_vqgan):
  stage = loaded.stage("vqgan")
  assert loaded.info["stages"] == ["vqgan", "swap", "lipsync"] and loaded.info["image_size"] == 32
  manifest = stage.manifest
  assert manifest["step"] == 1000 and manifest["ema"] and manifest["dtype"] == "float32"
  assert stage.manifest["config"]["model"] == json.loads(tiny_vqgan.config.model.to_json())
  encode = stage.exported["encode"]
  assert set(encode.platforms) == {"cpu", "cuda", "tpu"}
  n_params = len(jax.tree.leaves(stage.params))
  # params are arguments (one per leaf, then the images), the batch dimension is symbolic
  assert len(encode.in_avals) == n_params + 1
  assert str(encode.in_avals[-1].shape[0]) == "b" and encode.in_avals[-1].shape[1:] == (32, 32, 3)
  assert stage.manifest["functions"]["decode"]["inputs"]["tokens"]["shape"] == ["b", 16, 16, 16]
  # no params baked in as constants: each serialised function is far smaller than the params
  params_bytes = os.path.getsize(os.path.join(vqgan_bundle, "vqgan", bundle.PARAMS_FILE))
  for fn in ("encode", "decode"):
    fn_bytes = os.path.getsize(os.path.join(vqgan_bundle, "vqgan", fn + bundle.FUNCTION_SUFFIX))
    assert fn_bytes < params_bytes / 4


@pytest.fixture(scope="module")
def chain_outputs(chain):
  """The Chain's encode, decode, swap and lip-sync outputs on the tests' inputs at its batch (5).
  The batch-1 check feeds the bundle these inputs' first rows and compares with these outputs'
  first rows (the Chain computes each example on its own): one compile of each Chain function,
  not one per batch size."""
  n = chain.batch_size
  images = _images(n)
  tokens = np.asarray(chain.encode(chain.vqgan.params, images))
  source = np.ascontiguousarray(np.broadcast_to(tokens[:1], tokens.shape))
  mel = np.random.default_rng(4).uniform(-4, 4, (n, 16, 80)).astype(np.float32)
  return dict(
      images=images, tokens=tokens, source=source, mel=mel,
      decoded=np.asarray(chain.decode(chain.vqgan.params, tokens)),
      swapped=np.asarray(chain.swap_fn(chain.swap.params, chain.vqgan.params, source, tokens)),
      lipsynced=np.asarray(chain.lipsync_fn(chain.lipsync.params, chain.vqgan.params, tokens,
                                            source, mel)))


@pytest.mark.parametrize("batch", [1, 5])
def test_bundle_equals_chain(loaded, chain, chain_outputs, batch):
  ref = {k: v[:batch] for k, v in chain_outputs.items()}
  encode, decode = loaded.function("vqgan", "encode"), loaded.function("vqgan", "decode")
  assert _rel(encode(ref["images"]), ref["tokens"]) <= 1e-5
  assert _rel(decode(ref["tokens"]), ref["decoded"]) <= 1e-5
  assert _rel(loaded.function("swap", "swap")(ref["source"], ref["tokens"]),
              ref["swapped"]) <= 1e-5
  assert _rel(loaded.function("lipsync", "lipsync")(ref["tokens"], ref["source"], ref["mel"]),
              ref["lipsynced"]) <= 1e-5
  mel = ref["mel"]
  if batch != chain.batch_size:
    return
  # the host-side interface generate uses (uint8 in and out, fixed batches) agrees as well
  crops = np.random.default_rng(1).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
  outputs = []
  for c in (bundle.BundleChain(loaded, batch_size=batch), chain):
    tokens = c.encode_images(crops)
    swapped = c.swap_tokens(tokens[:1], tokens)
    outputs.append(c.decode_tokens(c.lipsync_tokens(swapped, swapped[:1], mel)))
  np.testing.assert_array_equal(*outputs)


_BLOCKER = """
import importlib.abc, sys
class Blocked(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in ("flax", "orbax", "optax") or name.startswith("swaptalk_jax.trainers"):
      raise ImportError(f"{name} is blocked in this test")
sys.meta_path.insert(0, Blocked())
"""


def test_loads_without_flax_orbax_trainers(vqgan_bundle, chain_outputs, tmp_path):
  np.savez(tmp_path / "io.npz", images=chain_outputs["images"][:3],
           tokens=chain_outputs["tokens"][:3])
  script = _BLOCKER + textwrap.dedent(f"""
      for blocked in ("flax", "orbax.checkpoint", "swaptalk_jax.trainers"):
        try:
          __import__(blocked)
        except ImportError:
          pass
        else:
          raise SystemExit(f"{{blocked}} imported although blocked")
      import numpy as np
      from swaptalk_jax.inference import bundle
      io = np.load({str(tmp_path / "io.npz")!r})
      chain = bundle.load_chain({vqgan_bundle!r}, batch_size=2)
      tokens = np.asarray(chain.encode(chain.vqgan.params, io["images"]))
      err = np.abs(tokens - io["tokens"]).max() / np.abs(io["tokens"]).max()
      heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("flax", "orbax", "optax"))
      print("REL", err, "HEAVY", heavy)
      assert err <= 1e-5 and not heavy
      """)
  result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, JAX_PLATFORMS="cpu"))
  assert result.returncode == 0, result.stderr[-3000:]
  assert "REL" in result.stdout


def test_bf16_bundle_halves_params(loaded, tiny_vqgan, tmp_path):
  out = str(tmp_path / "bf16")
  writer.export_bundle(out, {"vqgan": tiny_vqgan.workdir}, dtype="bfloat16")
  f32, bf16 = loaded, bundle.load_bundle(out)
  assert bf16.stage("vqgan").manifest["params"]["dtypes"]["encoder/conv_in/kernel"] == "bfloat16"
  size = lambda b: os.path.getsize(os.path.join(b.path, "vqgan", bundle.PARAMS_FILE))
  assert size(bf16) < 0.55 * size(f32)
  images = _images(5, seed=3)
  tokens32 = np.asarray(f32.function("vqgan", "encode")(images))
  tokens16 = np.asarray(bf16.function("vqgan", "encode")(images))
  # the same code up to bf16 rounding of the codebook (8 significant bits), i.e. the same index
  same_code = np.mean(np.all(np.isclose(tokens16, tokens32, rtol=2 ** -7, atol=1e-6), axis=-1))
  decoded32 = np.asarray(f32.function("vqgan", "decode")(tokens32))
  decoded16 = np.asarray(bf16.function("vqgan", "decode")(tokens32))
  assert tokens16.dtype == decoded16.dtype == np.float32   # a bf16 bundle keeps the f32 interface
  mae = np.mean(np.abs(decoded16 - decoded32))
  print(f"bf16 vs f32: same token {same_code:.3f}, decode MAE {mae:.4f} (image range [-1, 1])")
  assert same_code > 0.8 and mae < 0.05


def test_generate_with_bundle_writes_the_same_video(vqgan_bundle, chain, tmp_path, repo_root):
  """The whole generate path (track, crop, E, swap, lip-sync, D, paste, encode) on a synthetic clip
  with a synthetic source photo: `swaptalk generate --bundle` (a fresh process, the exported
  functions) and the run directories' chain write the same frames and audio."""
  import subprocess
  import sys
  from PIL import Image
  from data_prep.synthetic import make_clip
  from swaptalk_jax.inference import pipeline
  from swaptalk_jax.video import decode
  from swaptalk_jax.video.write import write_video
  clip = make_clip(9, 1, 0, 1.0, 128, partners=range(8, 10))
  target = write_video(str(tmp_path / "target.mp4"), clip.frames, fps=25, audio=clip.audio,
                       sample_rate=16000, crf=12, preset="ultrafast")
  photo = str(tmp_path / "source.png")
  Image.fromarray(make_clip(8, 0, 0, 0.2, 128, partners=range(8, 10)).frames[0]).save(photo)
  options = pipeline.Options(framing="synthetic", preset="ultrafast", progress=False)
  report = pipeline.generate(chain, photo, target, str(tmp_path / "run.mp4"), None, options)
  assert report.face_frames >= 20, report
  out = str(tmp_path / "bundle.mp4")
  proc = subprocess.run(
      [sys.executable, "-m", "swaptalk_jax.cli", "generate", "--bundle", vqgan_bundle,
       "--source", photo, "--target", target, "--out", out, "--framing", "synthetic",
       "--preset", "ultrafast", "--batch_size", str(chain.batch_size), "--quiet"],
      cwd=repo_root, env=dict(os.environ, JAX_PLATFORMS="cpu"), capture_output=True, text=True,
      timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  videos = [decode.read_video(out), decode.read_video(report.out)]
  np.testing.assert_array_equal(videos[0].frames, videos[1].frames)
  np.testing.assert_array_equal(videos[0].audio, videos[1].audio)


def test_savedmodel_equals_bundle(loaded, tmp_path):
  tf = pytest.importorskip("tensorflow")
  from swaptalk_jax.export import savedmodel
  out = str(tmp_path / "savedmodel")
  names = savedmodel.write_savedmodel(loaded.path, out, ["vqgan"])
  assert names == ["vqgan_decode", "vqgan_encode"]
  restored = tf.saved_model.load(out)
  images = _images(3, seed=5)
  tokens = restored.signatures["vqgan_encode"](images=tf.constant(images))
  tokens = np.asarray(next(iter(tokens.values())))
  assert _rel(tokens, loaded.function("vqgan", "encode")(images)) <= 1e-5


# ----------------------------------------------------------------------------- bad input, one line
def _one_line(excinfo, *words):
  message = str(excinfo.value)
  assert "\n" not in message, message
  for w in words:
    assert w in message, message


def test_missing_stage(tiny_vqgan, tmp_path):
  run = tmp_path / "run"
  run.mkdir()
  os.symlink(tiny_vqgan.workdir, run / "vqgan")
  with pytest.raises(MissingFileError) as e:
    writer.stage_dirs(str(run), ["vqgan", "swap"])
  _one_line(e, "stage 'swap' is missing", str(run / "swap"))
  with pytest.raises(UserError) as e:
    writer.stage_dirs(str(run), ["swap"])
  _one_line(e, "needs the vqgan stage")


def test_cli_missing_stage(tiny_vqgan, tmp_path, capsys):
  from swaptalk_jax import cli
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["swaptalk", "export", f"--run={tmp_path}", f"--vqgan={tiny_vqgan.workdir}",
              "--stages=vqgan,swap", f"--out={tmp_path / 'b'}"])
  assert exit_info.value.code == 1
  err = capsys.readouterr().err.strip()
  assert err.startswith("swaptalk export: error: stage 'swap' is missing") and "\n" not in err


def test_tampered_file(vqgan_bundle, tmp_path):
  copy = str(tmp_path / "tampered")
  shutil.copytree(vqgan_bundle, copy)
  path = os.path.join(copy, "vqgan", bundle.PARAMS_FILE)
  data = bytearray(open(path, "rb").read())
  data[-1] ^= 1
  open(path, "wb").write(bytes(data))
  with pytest.raises(bundle.BundleError) as e:
    bundle.load_bundle(copy)
  _one_line(e, "was modified", path)


def test_newer_format_version(vqgan_bundle, tmp_path):
  copy = str(tmp_path / "newer")
  shutil.copytree(vqgan_bundle, copy)
  info_path = os.path.join(copy, bundle.BUNDLE_FILE)
  info = json.load(open(info_path))
  info["format_version"] = bundle.FORMAT_VERSION + 1
  json.dump(info, open(info_path, "w"))
  with pytest.raises(bundle.BundleError) as e:
    bundle.load_bundle(copy)
  _one_line(e, f"format_version {bundle.FORMAT_VERSION + 1}", "upgrade swaptalk_jax")
