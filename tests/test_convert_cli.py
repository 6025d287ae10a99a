"""`swaptalk convert`: end to end through the CLI, the converter registry and its errors."""
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from swaptalk_jax import cli, params_file
from swaptalk_jax.convert import networks
from swaptalk_jax.models import arcface, lpips, vgg


def _torch_state_dict(shapes: dict, seed: int = 0) -> dict:
  """Random tensors of the given shapes (torch is only needed to write the .pth file)."""
  torch = pytest.importorskip("torch")
  rng = np.random.default_rng(seed)
  return {k: torch.from_numpy(rng.uniform(0.5, 1.0, s).astype(np.float32)) for k, s in shapes.items()}


def _arcface_torch_shapes(blocks) -> dict:
  """State-dict shapes of arcface_torch's iresnet with `blocks` per stage."""
  def bn(prefix, c):
    return {f"{prefix}.{n}": (c,) for n in ("weight", "bias", "running_mean", "running_var")}
  shapes = {"conv1.weight": (64, 3, 3, 3), **bn("bn1", 64), "prelu.weight": (64,)}
  inplanes = 64
  for stage, (planes, count) in enumerate(zip(arcface.STAGE_WIDTHS, blocks), start=1):
    for i in range(count):
      p, cin = f"layer{stage}.{i}", inplanes if i == 0 else planes
      shapes.update({**bn(f"{p}.bn1", cin), f"{p}.conv1.weight": (planes, cin, 3, 3),
                     **bn(f"{p}.bn2", planes), f"{p}.prelu.weight": (planes,),
                     f"{p}.conv2.weight": (planes, planes, 3, 3), **bn(f"{p}.bn3", planes)})
      if i == 0:
        shapes.update({f"{p}.downsample.0.weight": (planes, cin, 1, 1),
                       **bn(f"{p}.downsample.1", planes)})
    inplanes = planes
  shapes.update({**bn("bn2", 512), "fc.weight": (512, 512 * 49), "fc.bias": (512,),
                 **bn("features", 512)})
  return shapes


def _run_main(argv, capsys):
  with pytest.raises(SystemExit) as exit_info:
    cli.main(["swaptalk", "convert"] + argv)
    raise SystemExit(0)
  captured = capsys.readouterr()
  return exit_info.value.code, captured.out, captured.err


@pytest.mark.torch
def test_arcface_and_lpips_through_main(tmp_path, capsys):
  torch = pytest.importorskip("torch")
  src = str(tmp_path / "backbone.pth")
  torch.save(_torch_state_dict(_arcface_torch_shapes(arcface.VARIANTS["r18"])), src)
  dst = str(tmp_path / "arcface.safetensors")
  code, out, err = _run_main(["arcface", src, dst, "--variant", "r18"], capsys)
  assert code == 0, err
  assert "wrote" in out and "network=arcface" in out and "variant=r18" in out
  params, _ = params_file.load_pretrained("arcface", dst, "r18")
  assert params["fc"]["kernel"].shape == (512 * 49, 512)

  code, _, err = _run_main(["arcface", src, dst], capsys)
  assert code == 1 and "exists; pass --overwrite" in err
  code, _, err = _run_main(["arcface", src, dst, "--overwrite", "--variant", "r100"], capsys)
  assert code == 1 and "IResNet r18" in err and "r100" in err
  code, _, err = _run_main(["arcface", src, dst, "--overwrite", "--heads", src], capsys)
  assert code == 1 and "--heads does not apply to arcface" in err

  trunk = str(tmp_path / "vgg16.pth")
  vgg_shapes, cin = {}, 3
  indices = vgg.torchvision_feature_indices()
  for index, width in zip(indices.values(), [w for ws in vgg.VGG16_STAGES for w in ws]):
    vgg_shapes[f"features.{index}.weight"] = (width, cin, 3, 3)
    vgg_shapes[f"features.{index}.bias"] = (width,)
    cin = width
  torch.save(_torch_state_dict(vgg_shapes), trunk)
  heads = str(tmp_path / "heads.pth")
  torch.save(_torch_state_dict({f"lin{i}.model.1.weight": (1, c, 1, 1)
                                for i, c in enumerate(lpips.HEAD_CHANNELS)}), heads)
  dst = str(tmp_path / "lpips.safetensors")
  code, out, err = _run_main(["lpips", trunk, dst, f"--heads={heads}"], capsys)
  assert code == 0, err
  assert "network=lpips" in out and "variant=vgg16" in out
  params, _ = params_file.load_pretrained("lpips", dst, "vgg16")
  assert params["vgg"]["conv5_3"]["kernel"].shape == (3, 3, 512, 512)


def test_missing_source_and_usage(tmp_path, capsys):
  code, _, err = _run_main(["arcface", str(tmp_path / "none.pth"), str(tmp_path / "o")], capsys)
  assert code == 1 and "none.pth' does not exist" in err and "arcface_torch" in err
  code, _, err = _run_main(["alexnet", "a", "b"], capsys)
  assert code == 2 and "networks: arcface, lpips, inception, syncnet" in err
  code, out, _ = _run_main(["--help"], capsys)
  assert code == 0 and "torchvision" in out


def test_registry_points_at_importable_converters():
  for network, target in networks.CONVERTERS.items():
    module_name, function = target.split(":")
    try:
      module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
      if e.name == module_name:
        pytest.fail(f"{network}: converter module {module_name} does not exist yet")
      raise
    assert callable(getattr(module, function)), target


def test_console_script_dispatch(tmp_path, repo_root):
  """The real entry point (a fresh process through swaptalk_jax.cli) reports a missing file."""
  env = dict(os.environ, PYTHONPATH=str(repo_root), JAX_PLATFORMS="cpu")
  result = subprocess.run(
      [sys.executable, "-c", "from swaptalk_jax.cli import main; main()", "convert", "lpips",
       str(tmp_path / "vgg16.pth"), str(tmp_path / "out.safetensors")],
      capture_output=True, text=True, env=env, timeout=120, check=False)
  assert result.returncode == 1
  assert "vgg16.pth' does not exist" in result.stderr and "lpips" in result.stderr
