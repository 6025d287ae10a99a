"""Writes an inference bundle (layout: `inference/bundle.py`) from `swaptalk train` run directories.

The stages are loaded exactly as `swaptalk generate` loads them (`inference.stages`: EMA params
where kept, the model config stored in the run), optionally re-cast to bf16 (params stored and
computed in bf16), and each Chain function is serialised with `jax.export` for cpu, cuda and tpu
with a symbolic batch dimension, params as arguments. The bundle is written under a temporary name
and renamed when complete, so a crash never leaves a bundle that looks whole.
"""
import dataclasses
import json
import os
import shutil
import time
from typing import Optional, Sequence

import jax

from swaptalk_jax import params_file as params_io
from swaptalk_jax.core import checkpoint
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.export import functions as functions_lib
from swaptalk_jax.inference import bundle as bundle_lib
from swaptalk_jax.inference import stages as stages_lib

STAGES = ("vqgan", "swap", "lipsync")
PLATFORMS = ("cpu", "cuda", "tpu")
KNOWN_PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
# The parameter group a stage's inference params live in (see each trainer's Task.param_groups).
GROUPS = {"vqgan": "generator", "swap": "swap", "lipsync": "lipsync"}


def stage_dirs(run: Optional[str], stages: Sequence[str], **explicit: Optional[str]) -> dict:
  """{stage: run directory} for the requested stages: `--<stage>` flags, else `<run>/<stage>`;
  a stage with neither is one clear line."""
  if "lip_expert" in stages:
    raise UserError("lip_expert is not an inference stage (it only judges sync while training "
                    f"lipsync); a bundle holds {list(STAGES)}")
  unknown = sorted(set(stages) - set(STAGES))
  if unknown:
    raise UserError(f"unknown stage(s) {unknown}; a bundle holds stages of {list(STAGES)}")
  if "vqgan" not in stages:
    raise UserError("a bundle needs the vqgan stage (every other stage works in its token space)")
  dirs = {}
  for stage in stages:
    path = explicit.get(stage) or (os.path.join(run, stage) if run else None)
    if not path:
      raise UserError(f"no run directory for stage {stage!r}: pass --run (holding {stage}/) or "
                      f"--{stage}")
    if not os.path.isdir(path):
      raise MissingFileError(f"stage {stage!r} is missing: {path} does not exist (expected a "
                             f"`swaptalk train` run of configs/{stage}.py)")
    dirs[stage] = path
  return dirs


def _raw_params(stage: stages_lib.LoadedStage, name: str):
  params, _, _ = checkpoint.load_params(stage.workdir, GROUPS[name], ema=False, step=stage.step)
  return dataclasses.replace(stage, params=params)


def load_chain(dirs: dict, ema: bool = True, dtype: str = "float32") -> stages_lib.Chain:
  """The Chain `generate` would run for these run directories, with its params re-cast to `dtype`
  (and the raw instead of the EMA params when `ema` is False)."""
  vqgan = stages_lib.load_vqgan(dirs["vqgan"])
  loaded = dict(vqgan=vqgan, swap=None, lipsync=None)
  if "swap" in dirs:
    loaded["swap"] = stages_lib.load_swap(dirs["swap"], vqgan)
  if "lipsync" in dirs:
    loaded["lipsync"] = stages_lib.load_lipsync(dirs["lipsync"], vqgan)
  for name, stage in loaded.items():
    if stage is not None:
      loaded[name] = functions_lib.at_dtype(stage if ema else _raw_params(stage, name), dtype)
  return stages_lib.Chain(**loaded)


def _shape(dims) -> list:
  return [d if isinstance(d, int) else str(d) for d in dims]


def export_function(spec: functions_lib.StageFunction, stage_params: dict,
                    platforms: Sequence[str]) -> jax.export.Exported:
  """`spec` serialisable: params (shapes of `stage_params`) and inputs (symbolic batch) as args."""
  (batch,) = jax.export.symbolic_shape(bundle_lib.BATCH_DIM)
  param_specs = [jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), stage_params[s])
                 for s in spec.params]
  input_specs = [jax.ShapeDtypeStruct((batch,) + x.shape[1:],
                                      functions_lib.interface_dtype(x.dtype))
                 for x in spec.inputs.values()]
  fn = jax.jit(functions_lib.per_example(spec.fn, len(spec.params),
                                         tuple(x.dtype for x in spec.inputs.values())))
  return jax.export.export(fn, platforms=tuple(platforms))(*param_specs, *input_specs)


def _write_stage(directory: str, name: str, stage: stages_lib.LoadedStage, specs: list,
                 chain_params: dict, ema: bool, dtype: str, platforms) -> dict:
  os.makedirs(directory)
  variant = str(stage.config.get("variant", ""))
  params_path = os.path.join(directory, bundle_lib.PARAMS_FILE)
  params_io.save_params(params_path, stage.params, network=name, variant=variant,
                        extra_metadata=dict(step=stage.step, dtype=dtype, ema=ema))
  flat = params_io.flatten_params(stage.params)
  manifest = dict(
      format_version=bundle_lib.FORMAT_VERSION, stage=name, variant=variant, step=stage.step,
      source=os.path.abspath(stage.workdir), ema=ema, dtype=dtype, jax_version=jax.__version__,
      config=json.loads(stage.config.to_json()),
      params=dict(file=bundle_lib.PARAMS_FILE, shapes={k: list(v.shape) for k, v in flat.items()},
                  dtypes={k: str(v.dtype) for k, v in flat.items()}),
      functions={}, export_seconds={})
  for spec in specs:
    start = time.perf_counter()
    exported = export_function(spec, chain_params, platforms)
    file = spec.name + bundle_lib.FUNCTION_SUFFIX
    with open(os.path.join(directory, file), "wb") as f:
      f.write(exported.serialize())
    manifest["export_seconds"][spec.name] = round(time.perf_counter() - start, 3)
    manifest["functions"][spec.name] = dict(
        file=file, params=list(spec.params), platforms=list(exported.platforms),
        inputs={k: dict(shape=_shape(a.shape), dtype=str(a.dtype))
                for k, a in zip(spec.inputs, exported.in_avals[-len(spec.inputs):])},
        outputs=[dict(shape=_shape(a.shape), dtype=str(a.dtype)) for a in exported.out_avals])
  files = [bundle_lib.PARAMS_FILE] + [f["file"] for f in manifest["functions"].values()]
  manifest["sha256"] = {f: bundle_lib.sha256_file(os.path.join(directory, f)) for f in files}
  with open(os.path.join(directory, bundle_lib.MANIFEST_FILE), "w") as f:
    json.dump(manifest, f, indent=1)
  return manifest


def export_bundle(out: str, dirs: dict, ema: bool = True, dtype: str = "float32",
                  platforms: Sequence[str] = PLATFORMS, overwrite: bool = False) -> dict:
  """Writes the bundle of the stages in `dirs` ({stage: run dir}) to `out`; returns bundle.json's
  contents (plus per-function export seconds in each manifest)."""
  if os.path.exists(out) and not overwrite:
    raise UserError(f"{out} exists; pass --overwrite to replace it")
  bad = sorted(set(platforms) - set(KNOWN_PLATFORMS))
  if bad or not platforms:
    raise UserError(f"platforms {list(platforms)}: each must be one of {list(KNOWN_PLATFORMS)}")
  chain = load_chain(dirs, ema, dtype)
  loaded = {name: getattr(chain, name) for name in dirs}
  chain_params = {name: stage.params for name, stage in loaded.items()}
  specs = functions_lib.chain_functions(chain)
  tmp = f"{out.rstrip(os.sep)}.tmp-{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  manifests = {}
  try:
    for name, stage in loaded.items():
      manifests[name] = _write_stage(os.path.join(tmp, name), name, stage,
                                     [s for s in specs if s.stage == name], chain_params, ema,
                                     dtype, platforms)
    info = dict(format_version=bundle_lib.FORMAT_VERSION, stages=list(loaded),
                image_size=chain.image_size, dtype=dtype, ema=ema, platforms=list(platforms),
                snap_to_codes=chain.snap_to_codes, jax_version=jax.__version__,
                manifests_sha256={
                    n: bundle_lib.sha256_file(os.path.join(tmp, n, bundle_lib.MANIFEST_FILE))
                    for n in loaded})
    with open(os.path.join(tmp, bundle_lib.BUNDLE_FILE), "w") as f:
      json.dump(info, f, indent=1)
    if os.path.exists(out):
      shutil.rmtree(out)
    os.rename(tmp, out)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  info["export_seconds"] = {n: m["export_seconds"] for n, m in manifests.items()}
  return info
