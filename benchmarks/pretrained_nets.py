"""Forward time per image of the frozen pretrained networks on this machine (f32 and bf16), and the
extra cost of the identity + perceptual losses on a 256x256 reconstruction (forward + backward).

  python benchmarks/pretrained_nets.py [--batch 2] [--iters 3] [--nets arcface_r50,lpips,...]
  [--vqgan]   also time a VQGAN f16 generator fwd+bwd (L1 only) and report the losses' extra cost
              as a ratio of it (slow on a CPU)

Weights are random stand-ins (timing does not depend on them). The PyTorch column runs the same
architectures (from the parity tests) with as many threads as XLA uses; the ratio column is
ours / torch measured in the same run. dlib's nets run on real weights, one face at a time.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.common import cpu_threads, print_table, time_fn, torch_threads_like_jax  # noqa: E402
from swaptalk_jax.losses import identity, perceptual  # noqa: E402
from swaptalk_jax.models import arcface, lpips  # noqa: E402

NETS = ("arcface_r50", "arcface_r100", "lpips", "dlib_recognition", "dlib_landmarks68")


def _torch_reference(name):
  """The PyTorch reference architectures of the parity tests, or None without torch."""
  try:
    import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
  except ImportError:
    return None
  tests_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
  sys.path.insert(0, tests_dir)
  import test_arcface  # pylint: disable=import-outside-toplevel
  import test_lpips  # pylint: disable=import-outside-toplevel
  if name.startswith("arcface"):
    return test_arcface.torch_iresnet(arcface.VARIANTS[name.split("_")[1]])
  return test_lpips.torch_vgg16_features()


def _time_jax_net(name, dtype, batch, iters):
  rng = np.random.default_rng(0)
  if name.startswith("arcface"):
    params = jax.device_put(arcface.init_arcface_params(0, name.split("_")[1]))
    faces = jnp.asarray(rng.uniform(-1, 1, (batch, 112, 112, 3)), jnp.float32)
    fn = jax.jit(lambda p, x: arcface.arcface_embed(p, x, dtype=dtype))
    return time_fn(fn, params, faces, warmup=1, iters=iters) / batch
  params = jax.device_put(lpips.init_lpips_params(0))
  x = jnp.asarray(rng.uniform(-1, 1, (batch, 256, 256, 3)), jnp.float32)
  fn = jax.jit(lambda p, a, b: lpips.lpips_distance(p, a, b, dtype=dtype))
  return time_fn(fn, params, x, x[::-1], warmup=1, iters=iters) / batch


def _time_torch_net(name, batch, iters):
  import torch  # pylint: disable=import-outside-toplevel
  model = _torch_reference(name)
  size = 112 if name.startswith("arcface") else 256
  count = batch if name.startswith("arcface") else 2 * batch  # LPIPS runs the trunk on x and y
  x = torch.rand(count, 3, size, size) * 2 - 1

  def run():
    with torch.no_grad():
      return model(x)
  return time_fn(run, warmup=1, iters=iters) / batch


def _time_dlib(name, iters):
  from skimage import data  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.face import recognition as face_identity  # pylint: disable=import-outside-toplevel
  embedder = face_identity.DlibIdentityEmbedder()
  image = data.astronaut()[:260, 100:340]
  box = embedder.faces.largest_face(image)
  if name == "dlib_recognition":
    chip = embedder.face_chip(image, box)
    return time_fn(embedder.embed_chip, chip, warmup=1, iters=iters)
  return time_fn(lambda: embedder.faces.landmarks(image, box), warmup=1, iters=iters)


def _loss_costs(batch, iters, with_vqgan):
  """fwd+bwd seconds per 256 image of identity + LPIPS losses (gradient w.r.t. the reconstruction)."""
  rng = np.random.default_rng(1)
  images = jnp.asarray(rng.uniform(-1, 1, (batch, 256, 256, 3)), jnp.float32)
  arc_params = jax.device_put(arcface.init_arcface_params(0, "r50"))
  lpips_params = jax.device_put(lpips.init_lpips_params(0))
  rows = []
  for dtype in (jnp.float32, jnp.bfloat16):
    def losses(recon, target, lpips_p, arc_p, dtype=dtype):
      return jnp.sum(perceptual.lpips_loss(lpips_p, recon, target, dtype)
                     + 0.1 * identity.identity_loss(arc_p, recon, target, dtype=dtype))
    grad = jax.jit(jax.grad(losses))  # frozen params are arguments: closed over, XLA folds them
    seconds = time_fn(grad, images, images[::-1], lpips_params, arc_params, warmup=1, iters=iters)
    rows.append(["LPIPS + identity(r50) fwd+bwd", jnp.dtype(dtype).name, 1e3 * seconds / batch])
  if with_vqgan:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from configs import vqgan as vqgan_config  # pylint: disable=import-outside-toplevel
    from swaptalk_jax.models.vqgan import vqgan_from_config  # pylint: disable=import-outside-toplevel
    model = vqgan_from_config(vqgan_config.model_config("f16"))
    params = jax.jit(model.init)(jax.random.key(0), images[:1])["params"]

    def l1(p, x):
      recon = model.apply({"params": p}, x)[0]
      return jnp.mean(jnp.abs(recon - x))
    step = jax.jit(jax.grad(l1))
    seconds = time_fn(step, params, images, warmup=1, iters=iters) / batch
    rows.append(["VQGAN f16 generator fwd+bwd (L1)", "float32", 1e3 * seconds])
    for row in rows:
      row.append(row[2] / (1e3 * seconds))
  return rows


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--batch", type=int, default=2)
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--nets", default=",".join(NETS))
  parser.add_argument("--vqgan", action="store_true")
  args = parser.parse_args()
  has_torch = _torch_reference("lpips") is not None
  if has_torch:
    torch_threads_like_jax()
  print(f"jax {jax.__version__} on {jax.default_backend()}, {cpu_threads()} threads, batch "
        f"{args.batch}; shared machine: other jobs load the CPU, compare rows of one run only")
  rows = []
  for name in filter(None, args.nets.split(",")):
    if name.startswith("dlib"):
      rows.append([name, "float32 (dlib)", 1e3 * _time_dlib(name, args.iters), "", ""])
      continue
    reference = 1e3 * _time_torch_net(name, args.batch, args.iters) if has_torch else None
    for dtype in (jnp.float32, jnp.bfloat16):
      ours = 1e3 * _time_jax_net(name, dtype, args.batch, args.iters)
      rows.append([name, jnp.dtype(dtype).name, ours, "" if reference is None else reference,
                   "" if reference is None else ours / reference])
  if rows:
    print_table(rows, ["network", "dtype", "ms/image (ours)", "ms/image (torch f32)",
                       "ours / torch"])
    print()
  loss_rows = _loss_costs(args.batch, args.iters, args.vqgan)
  columns = ["256x256 per image", "dtype", "ms/image"] + (["/ VQGAN step"] if args.vqgan else [])
  print_table(loss_rows, columns)


if __name__ == "__main__":
  main()
