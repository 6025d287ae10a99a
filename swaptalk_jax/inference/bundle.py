"""Loads and runs an inference bundle written by `swaptalk export`, with jax + numpy + safetensors
alone: no flax, no orbax, no trainers (a test runs it with those made unimportable).

A bundle is a folder:

  bundle.json              format_version, the stages it holds, sha256 of each stage manifest
  <stage>/manifest.json    stage, variant, step, source run, ema, dtype, the run's config, the
                           params' shapes and dtypes, each function's params/inputs/outputs, and
                           the sha256 of every file of the stage
  <stage>/params.safetensors   the stage's inference params (swaptalk_jax/params_file.py format)
  <stage>/<function>.jax_export  `jax.export` serialisation (StableHLO) of one function, lowered
                           for cpu, cuda and tpu, with a symbolic batch dimension `b`; params are
                           its leading ARGUMENTS (not constants), in the order the manifest lists

Every file is checked against its sha256 before use; a bundle of a newer format is refused.
`load_chain` returns an object with the interface of `inference.stages.Chain` (what
`inference.pipeline.generate` calls), so `swaptalk generate --bundle` runs the same pipeline.
"""
import dataclasses
import hashlib
import json
import os
from typing import Any, Callable, Optional

import jax
import numpy as np

from swaptalk_jax import params_file as params_io
from swaptalk_jax.errors import MissingFileError, UserError

FORMAT_VERSION = 1
BUNDLE_FILE = "bundle.json"
MANIFEST_FILE = "manifest.json"
PARAMS_FILE = "params.safetensors"
FUNCTION_SUFFIX = ".jax_export"
BATCH_DIM = "b"   # the symbolic batch dimension's name in manifests and exported shapes


class BundleError(UserError):
  """A bundle that is missing, damaged (sha256 mismatch), of a newer format, or used wrongly."""


def sha256_file(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def read_json(path: str) -> dict:
  if not os.path.isfile(path):
    raise MissingFileError(f"{path} does not exist (not a bundle written by `swaptalk export`?)")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise BundleError(f"{path}: not readable JSON ({e})") from None


def check_format(info: dict, path: str) -> None:
  version = info.get("format_version")
  if not isinstance(version, int):
    raise BundleError(f"{path}: no integer format_version (got {version!r})")
  if version > FORMAT_VERSION:
    raise BundleError(f"{path} has bundle format_version {version}, newer than this swaptalk_jax "
                      f"reads ({FORMAT_VERSION}); upgrade swaptalk_jax or re-export the bundle")


def verify_file(directory: str, name: str, expected: Optional[str]) -> str:
  """The path of `directory/name`, after checking that it exists and has the listed sha256."""
  path = os.path.join(directory, name)
  if expected is None:
    raise BundleError(f"{directory}: no sha256 listed for {name}; the manifest is damaged")
  if not os.path.isfile(path):
    raise MissingFileError(f"bundle file {path} is missing")
  actual = sha256_file(path)
  if actual != expected:
    raise BundleError(f"bundle file {path} was modified: sha256 {actual[:12]}... != "
                      f"{expected[:12]}... listed in the manifest; re-export the bundle")
  return path


@dataclasses.dataclass
class BundleStage:
  """One stage of a bundle: its manifest, params (device arrays) and exported functions."""
  name: str
  manifest: dict
  params: Any
  exported: dict   # function name -> jax.export.Exported

  @property
  def config(self) -> dict:
    return self.manifest["config"]

  @property
  def step(self) -> int:
    return self.manifest["step"]


@dataclasses.dataclass
class Bundle:
  path: str
  info: dict
  stages: dict    # stage name -> BundleStage
  _jitted: dict = dataclasses.field(default_factory=dict, repr=False)

  def stage(self, name: str) -> BundleStage:
    if name not in self.stages:
      raise BundleError(f"bundle {self.path} has no {name!r} stage; it has {sorted(self.stages)}")
    return self.stages[name]

  def function(self, stage: str, name: str) -> Callable:
    """The exported `stage/name` as a jitted fn(*inputs): the params it takes (its own stage's and,
    e.g. for swap, the VQGAN's) are passed from the bundle, in the manifest's order."""
    call = self.raw_function(stage, name)
    spec = self.stage(stage).manifest["functions"][name]
    params = [self.stage(s).params for s in spec["params"]]
    return lambda *inputs: call(*params, *inputs)

  def raw_function(self, stage: str, name: str) -> Callable:
    """The exported `stage/name` as a jitted fn(*params, *inputs): Chain's signature (params
    first). One jitted callable per function, so every caller shares its compiles."""
    if (stage, name) not in self._jitted:
      if name not in self.stage(stage).exported:
        raise BundleError(f"bundle stage {stage!r} has no function {name!r}; it has "
                          f"{sorted(self.stage(stage).exported)}")
      self._jitted[stage, name] = jax.jit(self.stage(stage).exported[name].call)
    return self._jitted[stage, name]


def _load_stage(root: str, name: str, expected_manifest_sha: Optional[str]) -> BundleStage:
  directory = os.path.join(root, name)
  manifest_path = verify_file(directory, MANIFEST_FILE, expected_manifest_sha)
  manifest = read_json(manifest_path)
  check_format(manifest, manifest_path)
  hashes = manifest.get("sha256", {})
  params_file = manifest["params"]["file"]
  params_path = verify_file(directory, params_file, hashes.get(params_file))
  params, _ = params_io.load_params(params_path)
  shapes = {k: list(v.shape) for k, v in params_io.flatten_params(params).items()}
  if shapes != manifest["params"]["shapes"]:
    raise BundleError(f"{params_path}: parameter shapes differ from {manifest_path}")
  exported = {}
  for fn_name, spec in manifest["functions"].items():
    path = verify_file(directory, spec["file"], hashes.get(spec["file"]))
    with open(path, "rb") as f:
      blob = f.read()
    try:
      exported[fn_name] = jax.export.deserialize(bytearray(blob))
    except Exception as e:   # jax raises assorted errors for serialisations it cannot read
      raise BundleError(f"{path}: this jax ({jax.__version__}) cannot read the exported function "
                        f"(exported with jax {manifest.get('jax_version')}): {e}") from None
  return BundleStage(name, manifest, jax.device_put(params), exported)


def load_bundle(path: str) -> Bundle:
  """Reads and verifies a bundle folder (every file's sha256, format versions)."""
  if not os.path.isdir(path):
    raise MissingFileError(f"bundle {path} does not exist (write one with `swaptalk export`)")
  info_path = os.path.join(path, BUNDLE_FILE)
  info = read_json(info_path)
  check_format(info, info_path)
  manifests = info.get("manifests_sha256", {})
  stages = {name: _load_stage(path, name, manifests.get(name)) for name in info["stages"]}
  return Bundle(path, info, stages)


class ConfigView(dict):
  """The run's stored config as a dict that also reads like the ConfigDict it was
  (`config.data.image_size`), without ml_collections."""

  def __getattr__(self, name: str):
    try:
      value = self[name]
    except KeyError:
      raise AttributeError(name) from None
    return ConfigView(value) if isinstance(value, dict) else value

  def get(self, key, default=None):
    value = super().get(key, default)
    return ConfigView(value) if isinstance(value, dict) else value


class _StageView:
  """What `Chain` users read off a loaded stage: params, config, step (like `LoadedStage`)."""

  def __init__(self, stage: BundleStage):
    self.params, self.step, self.workdir = stage.params, stage.step, stage.manifest.get("source")
    self.config = ConfigView(stage.config)


class BundleChain:
  """`inference.stages.Chain` over a bundle: the same attributes and host-side methods, the same
  padding to fixed batches (one compile per stage), the exported functions in place of the jitted
  flax ones."""

  def __init__(self, bundle: Bundle, batch_size: int = 8):
    self.bundle, self.batch_size = bundle, batch_size
    self.vqgan = _StageView(bundle.stage("vqgan"))
    self.swap = _StageView(bundle.stages["swap"]) if "swap" in bundle.stages else None
    self.lipsync = _StageView(bundle.stages["lipsync"]) if "lipsync" in bundle.stages else None
    self.encode = bundle.raw_function("vqgan", "encode")
    self.decode = bundle.raw_function("vqgan", "decode")
    self.swap_fn = bundle.raw_function("swap", "swap") if self.swap else None
    self.lipsync_fn = bundle.raw_function("lipsync", "lipsync") if self.lipsync else None

  @property
  def image_size(self) -> int:
    return int(self.bundle.info["image_size"])

  def batched(self, fn: Callable, *arrays: np.ndarray) -> np.ndarray:
    """fn over the leading axis of `arrays` in fixed batches (the last padded), as Chain does."""
    n, b = arrays[0].shape[0], self.batch_size
    out = []
    for s in range(0, n, b):
      parts = [a[s:s + b] for a in arrays]
      k = parts[0].shape[0]
      if k < b:
        parts = [np.concatenate([p, np.repeat(p[-1:], b - k, axis=0)]) for p in parts]
      out.append(np.asarray(fn(*parts))[:k])
    return np.concatenate(out) if out else np.zeros((0,))

  def encode_images(self, crops: np.ndarray) -> np.ndarray:
    """uint8 crops [N,S,S,3] -> T_VQ [N,h,w,D]."""
    images = crops.astype(np.float32) / 127.5 - 1.0
    return self.batched(lambda x: self.encode(self.vqgan.params, x), images)

  def decode_tokens(self, tokens: np.ndarray) -> np.ndarray:
    """T_VQ [N,h,w,D] -> uint8 faces [N,S,S,3]."""
    images = self.batched(lambda z: self.decode(self.vqgan.params, z), tokens)
    return np.clip(np.round((images.astype(np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)

  def swap_tokens(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """S_VQ [1,h,w,D] (one photo) and T_VQ [N,h,w,D] -> T~_VQ [N,h,w,D]."""
    if self.swap is None:
      raise BundleError(f"bundle {self.bundle.path} has no swap stage")
    src = np.broadcast_to(source, target.shape)
    return self.batched(lambda s, t: self.swap_fn(self.swap.params, self.vqgan.params, s, t),
                        src, target)

  def lipsync_tokens(self, tokens: np.ndarray, reference: np.ndarray,
                     mel: np.ndarray) -> np.ndarray:
    """T_VQ [N,h,w,D], one reference R~_VQ [1,h,w,D], per-frame mel windows [N,16,80]."""
    if self.lipsync is None:
      raise BundleError(f"bundle {self.bundle.path} has no lipsync stage")
    ref = np.broadcast_to(reference, tokens.shape)
    return self.batched(lambda t, r, m: self.lipsync_fn(self.lipsync.params, self.vqgan.params,
                                                        t, r, m), tokens, ref, mel)


def load_chain(path: str, batch_size: int = 8) -> BundleChain:
  """The stage functions of a bundle with `inference.stages.Chain`'s interface, for
  `inference.pipeline.generate(chain, ...)` (what `swaptalk generate --bundle` calls)."""
  return BundleChain(load_bundle(path), batch_size)
