"""Forward time per image / window of the metric networks (FID Inception, SyncNet) on this CPU.

Baseline: the PyTorch reference architectures of the parity tests (same random weights), timed in
the same run with the same thread count, interleaved. Run: `python benchmarks/metric_nets.py`
(Python 3.11 venv for the PyTorch column; without torch only the JAX rows print).
"""
import contextlib
import os
import pathlib
import statistics
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks import common  # noqa: E402
from swaptalk_jax.convert import inception as convert_inception  # noqa: E402
from swaptalk_jax.convert import syncnet as convert_syncnet  # noqa: E402
from swaptalk_jax.models import inception, syncnet  # noqa: E402

INCEPTION_BATCH = 4
SYNC_BATCH = 10


def _torch_models():
  """(inception, syncnet) PyTorch references from the tests, or None without torch."""
  try:
    import torch  # noqa: F401  pylint: disable=unused-import
  except ImportError:
    return None
  from tests.reference.torch_inception import fid_inception_v3
  from tests.reference.torch_syncnet import syncnet_v2
  return fid_inception_v3(), syncnet_v2()


def _state(model):
  return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _interleaved_medians(fns, rounds: int = 3) -> dict:
  """Median seconds per function, timed round-robin so a load spike hits every column alike."""
  no_grad = contextlib.nullcontext()
  if any(label.startswith("torch") for label in fns):
    import torch
    no_grad = torch.no_grad()
  with no_grad:
    for fn in fns.values():  # compile / warm up
      common.time_fn(fn, warmup=0, iters=1)
    samples = {label: [] for label in fns}
    for _ in range(rounds):
      for label, fn in fns.items():
        samples[label].append(common.time_fn(fn, warmup=0, iters=1))
  return {label: statistics.median(values) for label, values in samples.items()}


def main():
  torch_models = _torch_models()
  threads = common.torch_threads_like_jax() if torch_models else common.cpu_threads()
  rng = np.random.default_rng(0)
  images = rng.uniform(size=(INCEPTION_BATCH, 256, 256, 3)).astype(np.float32)
  frames = rng.integers(0, 256, size=(SYNC_BATCH, 5, 224, 224, 3)).astype(np.float32)
  coeffs = rng.normal(size=(SYNC_BATCH, 13, 20)).astype(np.float32)

  if torch_models:
    inc_vars = convert_inception.variables_from_state_dict(_state(torch_models[0]))
    sync_vars = convert_syncnet.variables_from_state_dict(_state(torch_models[1]))
  else:
    inc_vars = inception.FIDInceptionV3().init(jax.random.key(0), images[:1])
    sync_vars = syncnet.SyncNet().init(jax.random.key(0), coeffs[:1], frames[:1])

  def inception_fn(dtype):
    apply = jax.jit(inception.FIDInceptionV3(dtype=dtype).apply)
    return lambda: apply(inc_vars, images)

  def sync_fn(dtype, method):
    model = syncnet.SyncNet(dtype=dtype)
    apply = jax.jit(lambda v, x: model.apply(v, x, method=method))
    data = frames if method is syncnet.SyncNet.embed_lip else coeffs
    return lambda: apply(sync_vars, data)

  cases = [
      ("inception 256->299", INCEPTION_BATCH, {
          "jax f32": inception_fn(jnp.float32), "jax bf16": inception_fn(jnp.bfloat16)}),
      ("syncnet lip 5x224", SYNC_BATCH, {
          "jax f32": sync_fn(jnp.float32, syncnet.SyncNet.embed_lip),
          "jax bf16": sync_fn(jnp.bfloat16, syncnet.SyncNet.embed_lip)}),
      ("syncnet audio 13x20", SYNC_BATCH, {
          "jax f32": sync_fn(jnp.float32, syncnet.SyncNet.embed_audio)}),
  ]
  if torch_models:
    import torch
    torch_inc, torch_sync = torch_models
    t_images = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
    t_frames = torch.from_numpy(frames).permute(0, 4, 1, 2, 3).contiguous()
    t_coeffs = torch.from_numpy(coeffs)[:, None]
    torch_fns = [lambda: torch_inc(t_images), lambda: torch_sync.forward_lip(t_frames),
                 lambda: torch_sync.forward_aud(t_coeffs)]
    for (_, _, fns), fn in zip(cases, torch_fns):
      fns["torch f32"] = fn

  rows = []
  with_torch = torch_models is not None
  for name, batch, fns in cases:
    times = _interleaved_medians(fns)
    baseline = times.get("torch f32")
    for label, seconds in times.items():
      ratio = seconds / baseline if baseline else float("nan")
      rows.append([name, label, batch, 1000 * seconds / batch, ratio])
  print(f"jax {jax.__version__}, {threads} CPU threads (shared machine: other jobs may load it)")
  common.print_table(rows, ["network", "impl", "batch", "ms / item", "time vs torch f32"])
  if not with_torch:
    print("(torch not importable: no PyTorch baseline)")


if __name__ == "__main__":
  main()
