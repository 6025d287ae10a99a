"""tools/quickstart.sh's SWAPTALK_VQGAN switch (claim C1's chains): every variant it offers is a
configs/vqgan.py CPU variant, and an unknown one stops the script in one line before it installs or
trains anything. No training: the script exits at the check."""
import pathlib
import re
import subprocess

from configs import vqgan as vqgan_config

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "tools" / "quickstart.sh"


def test_offered_variants_are_cpu_vqgan_variants():
  offered = re.findall(r"^  ([\w|]+)\) size=", SCRIPT.read_text(), flags=re.M)
  variants = [v for line in offered for v in line.split("|")]
  assert "micro" in variants and set(variants) <= set(vqgan_config.CPU_VARIANTS)


def test_unknown_variant_is_one_clear_error_before_setup(tmp_path):
  result = subprocess.run(["bash", str(SCRIPT)], env={"PATH": "/usr/bin:/bin",
                          "SWAPTALK_VQGAN": "f17", "SWAPTALK_OUT": str(tmp_path / "out")},
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 2
  assert result.stderr.strip() == ("quickstart: SWAPTALK_VQGAN=f17: choose micro, micro_8x8, "
                                   "micro_f4 or micro_32x32")
  assert not (tmp_path / "out").exists()


def test_unknown_recipe_is_one_clear_error_before_setup(tmp_path):
  result = subprocess.run(["bash", str(SCRIPT)], env={"PATH": "/usr/bin:/bin",
                          "SWAPTALK_RECIPE": "longer", "SWAPTALK_OUT": str(tmp_path / "out")},
                          capture_output=True, text=True, timeout=60)
  assert result.returncode == 2
  assert result.stderr.strip() == "quickstart: SWAPTALK_RECIPE=longer: choose quick or long"
  assert not (tmp_path / "out").exists()


def test_long_recipe_trains_every_stage_longer_and_checkpoints_to_resume():
  rows = re.findall(r"^  (\w+)\) steps=\(([\d ]+)\) every=(\d+)", SCRIPT.read_text(), flags=re.M)
  table = {name: ([int(n) for n in steps.split()], int(every)) for name, steps, every in rows}
  (quick, quick_every), (long, long_every) = table["quick"], table["long"]
  assert len(quick) == len(long) == 5 and all(b > a for a, b in zip(quick, long))
  assert quick_every == 0 and 0 < long_every < max(long)   # 0: the end only; long: resumable
