"""`swaptalk compile`: the ahead-of-time step is the trainer's step, batch shapes match the real
pipelines, a TPU topology compiles on this CPU (libtpu), and bad targets/meshes/batches fail in
one line. The TPU tests are skipped where libtpu is not installed (`pip install .[tpu]`, Python
>= 3.12)."""
import os
import subprocess
import sys

import flax.linen as nn
import jax
import pytest

from configs import toy
from swaptalk_jax.aot import batch_specs, compile as aot_compile, topology
from swaptalk_jax.errors import UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_libtpu = pytest.mark.skipif(not topology.libtpu_available(),
                                  reason="libtpu is not installed (pip install '.[tpu]' on "
                                         "Python >= 3.12): cannot compile for a TPU topology")


def _toy(**data):
  c = toy.get_config()
  c.fsdp_min_size = 64          # so the toy's kernels are sharded under fsdp
  c.data.update(data)
  return c


def test_aot_step_lowers_to_the_trainers_program(tmp_path):
  """Same Task, optimizers, mesh, shardings and step as `swaptalk train`: identical StableHLO."""
  from swaptalk_jax.trainers.registry import build_trainer
  config = _toy()
  config.mesh.update(data=2, fsdp=2)
  devices = jax.devices()[:4]
  program = aot_compile.build_step_program(config, devices)
  ours = aot_compile.lower(program).as_text()
  trainer = build_trainer(config, str(tmp_path), devices=devices)
  batch = {k: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=trainer.batch_sharding)
           for k, s in trainer.batch_spec.items()}
  with jax.set_mesh(trainer.mesh), nn.logical_axis_rules(trainer.rules):
    theirs = trainer.step_fn.lower(trainer.abstract_state, batch, trainer.frozen).as_text()
  assert jax.tree.map(lambda x: x.sharding, program.abstract_state) == trainer.state_shardings
  assert ours == theirs


@pytest.mark.parametrize("stage,extra", [("vqgan", {}), ("swap", {}), ("lip_expert", {}),
                                         ("lipsync", {"resync_gt": True})])
def test_batch_spec_matches_the_pipelines(stage_data, stage, extra):
  from swaptalk_jax.data import pipelines
  from stage_fixtures import data_sources
  from configs import vqgan
  config = vqgan.get_config("micro")
  config.stage = stage      # the table is keyed by stage; the data config is every stage's
  config.data.sources = data_sources(stage_data)
  config.data.batch_size = 2
  if extra:
    config.data.lipsync.update(extra)
  spec = batch_specs._pipeline_shapes(stage, pipelines.resolve_config(config.data))
  batch = next(pipelines.make_train_iterator(stage, config.data))
  assert {k: (v.shape[1:], v.dtype) for k, v in batch.items()} == \
      {k: (shape, jax.numpy.dtype(dtype)) for k, (shape, dtype) in spec.items()}


def test_bad_targets_meshes_and_batches_fail_in_one_line():
  with pytest.raises(UserError, match="unknown compile target 'tpu-v5'"):
    topology.resolve_target("tpu-v5")
  with pytest.raises(UserError, match="unknown TPU slice 'v5e-7'"):
    topology.resolve_target("v5e-7")
  with pytest.raises(UserError, match="this process has 8 CPU devices"):
    topology.resolve_target("cpu:16")
  config = _toy()
  config.mesh.update(data=3, fsdp=1)
  with pytest.raises(UserError, match="needs 3 devices, 4 are present"):
    aot_compile.build_step_program(config, jax.devices()[:4])
  config = _toy(batch_size=6)
  config.mesh.update(data=2, fsdp=2)
  with pytest.raises(UserError, match="global batch 6 .* not divisible by the 4-way data split"):
    aot_compile.build_step_program(config, jax.devices()[:4])
  assert topology.canonical_topology("v5e-256") == "v5e:16x16"


@needs_libtpu
def test_unknown_tpu_topology_fails_in_one_line():
  with pytest.raises(UserError, match=r"unknown TPU topology 'v9:2x2'.*v9"):
    topology.resolve_target("v9:2x2")
  with pytest.raises(UserError, match=r"unknown TPU topology 'v5e:3x3'"):
    topology.resolve_target("v5e:3x3")


@needs_libtpu
def test_compiles_for_a_tpu_topology_on_this_cpu(tmp_path):
  target = topology.resolve_target("v5e:2x2")
  assert (target.num_devices, target.device_kind) == (4, "TPU v5 lite")
  assert target.hbm_per_device == 16 * 2 ** 30
  config = _toy(batch_size=8)
  config.mesh.update(data=2, fsdp=2)
  report = aot_compile.compile_for_target(config, target, dump_dir=str(tmp_path))
  assert report.mesh == {"data": 2, "fsdp": 2} and report.per_device_batch == 2
  assert report.fits and 0 < report.peak_bytes < 2 ** 30
  assert report.flops_per_device > 0
  # fsdp=2 halves every sharded leaf: the per-device params are below the whole model's bytes.
  whole = 4 * sum(report.param_counts.values())
  assert 0 < report.param_bytes["params"] < whole
  assert (tmp_path / "train_step.hlo.txt").stat().st_size > 0
  assert "'fsdp'" in (tmp_path / "state_shardings.json").read_text()


@needs_libtpu
def test_cli_exits_3_when_the_step_does_not_fit(tmp_path):
  """The toy's attention at 128x128 tokens with 16 examples per chip needs > 16 GiB."""
  result = subprocess.run(
      [sys.executable, "-m", "swaptalk_jax.cli", "compile", "--config=configs/toy.py",
       "--target=v5e:2x2", "--config.data.image_size=256", "--config.data.batch_size=64",
       f"--dump_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=600,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 3, result.stderr[-2000:]
  assert "DOES NOT FIT" in result.stdout
  assert "does not fit on v5e:2x2" in result.stderr
