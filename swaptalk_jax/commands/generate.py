"""usage: swaptalk generate --source PHOTO --target VIDEO [--audio AUDIO] --out OUT.mp4
                         (--run DIR | --vqgan DIR [--swap DIR] [--lipsync DIR] | --bundle DIR)
                         [--no-swap] [--no-sync]

One photo's face swapped onto a target video whose lips follow the driving audio (SwapTalk's
inference, swaptalk_jax/inference/pipeline.py). Stages come from `swaptalk train` run directories:
--vqgan/--swap/--lipsync, or one --run DIR holding them as DIR/vqgan, DIR/swap, DIR/lipsync, or
an exported bundle (--bundle, `swaptalk export`; runs with jax alone, writes the same video).
--no-swap keeps the target's face (lip-sync only), --no-sync keeps its lips (swap only); both:
the target reconstructed through the VQGAN. --audio may be any audio or video file at any rate;
without it the target's own audio drives the lips. Flag names take '-' or '_' (--no-swap, --no_swap).
"""
import sys

from absl import app, flags

from swaptalk_jax import cli_support
from swaptalk_jax.errors import UserError

EXAMPLE = ("swaptalk generate --source photo.jpg --target clip.mp4 --audio speech.wav "
           "--out out.mp4 --run outputs/chain --preview out.png")

_SOURCE = flags.DEFINE_string("source", None, "Source photo (its face is swapped in).")
_TARGET = flags.DEFINE_string("target", None, "Target video (any container/codec/fps/rotation).")
_AUDIO = flags.DEFINE_string("audio", None, "Driving audio (any audio/video file); default: the "
                             "target's own audio.")
_OUT = flags.DEFINE_string("out", None, "Output video (.mp4, H.264 + AAC, 25 fps).")
_RUN = flags.DEFINE_string("run", None, "A folder holding the stage runs as vqgan/, swap/, lipsync/.")
_VQGAN = flags.DEFINE_string("vqgan", None, "The stage-0 VQGAN run directory.")
_SWAP = flags.DEFINE_string("swap", None, "The stage-1 face-swap run directory.")
_LIPSYNC = flags.DEFINE_string("lipsync", None, "The stage-3 lip-sync run directory.")
_BUNDLE = flags.DEFINE_string("bundle", None, "An exported bundle (swaptalk export) in place of "
                              "the run directories.")
_NO_SWAP = flags.DEFINE_bool("no_swap", False, "Keep the target's face (lip-sync only).")
_NO_SYNC = flags.DEFINE_bool("no_sync", False, "Keep the target's lips (swap only).")
_POLICY = flags.DEFINE_enum("audio_policy", "pad", ["trim", "loop", "pad"],
                            "Audio and video of different lengths: trim (the shorter one sets the "
                            "length), loop (the audio repeats) or pad (silence) to the video's length.")
_FACE_INDEX = flags.DEFINE_integer("face_index", None, "Which face of the source photo (0 = "
                                   "largest) when it shows several.")
_PREVIEW = flags.DEFINE_string("preview", None, "Also write a PNG strip: source | target | output.")
_FRAMING = flags.DEFINE_enum("framing", "auto", ["auto", "aligned", "synthetic"],
                             "Face crop template: 'aligned' (data prep's, real footage), "
                             "'synthetic' (the synthetic set's framing), 'auto' (from the VQGAN "
                             "run's data sources).")
_BATCH = flags.DEFINE_integer("batch_size", 8, "Faces per device call.")
_CHUNK = flags.DEFINE_integer("chunk_frames", 32, "Frames decoded, generated and written per chunk.")
_COLOR = flags.DEFINE_float("color_match", 1.0, "0..1: pull the face's colours to the target's.")
_FEATHER = flags.DEFINE_float("feather", 0.1, "Paste-back mask ramp (fraction of the crop).")
_MIN_FACE = flags.DEFINE_integer("min_face", 40, "Smallest target face, in frame pixels.")
_THRESHOLD = flags.DEFINE_float("detect_threshold", None, "dlib HOG score threshold for faces "
                                "(default: 0; -0.6 with the synthetic framing).")
_CRF = flags.DEFINE_integer("crf", 18, "H.264 quality (lower = better).")
_PRESET = flags.DEFINE_string("preset", "medium", "H.264 speed preset (ultrafast..veryslow).")
_QUIET = flags.DEFINE_bool("quiet", False, "No progress bars.")


def _normalise(argv):
  """--no-swap -> --no_swap: flag names accept dashes."""
  out = []
  for a in argv:
    if a.startswith("--") and not a.startswith("---"):
      name, eq, value = a[2:].partition("=")
      a = "--" + name.replace("-", "_") + eq + value
    out.append(a)
  return out


def _framing(framing: str, vqgan) -> str:
  if framing != "auto":
    return framing
  sources = vqgan.config.data.get("sources", [])
  names = {s.get("name") for s in sources}
  return "synthetic" if names == {"synthetic"} else "aligned"


def _main(argv):
  cli_support.no_positional(argv)
  cli_support.require(target=_TARGET.value, out=_OUT.value)
  if not _NO_SWAP.value and not _SOURCE.value:
    raise UserError("--source is required (or pass --no-swap to keep the target's face)")
  from swaptalk_jax.core import logs  # pylint: disable=import-outside-toplevel
  logs.quiet_library_logs()
  from swaptalk_jax.inference import pipeline  # pylint: disable=import-outside-toplevel
  chain = _bundle_chain() if _BUNDLE.value else _run_chain()
  vqgan = chain.vqgan
  options = pipeline.Options(
      audio_policy=_POLICY.value, face_index=_FACE_INDEX.value,
      framing=_framing(_FRAMING.value, vqgan), chunk_frames=_CHUNK.value,
      min_face=_MIN_FACE.value, detect_threshold=_THRESHOLD.value, feather=_FEATHER.value, color_match=_COLOR.value,
      preview=_PREVIEW.value, crf=_CRF.value, preset=_PRESET.value, progress=not _QUIET.value)
  report = pipeline.generate(chain, _SOURCE.value, _TARGET.value, _OUT.value, _AUDIO.value, options)
  parts = ", ".join(f"{k} {v:.1f}s" for k, v in report.part_seconds.items() if v > 0)
  print(f"swaptalk generate: wrote {report.out}: {report.frames} frames at 25 fps "
        f"({report.frames / 25:.2f} s), {report.face_frames} generated, {report.passed_through} "
        f"without a face passed through; audio: {report.audio}; "
        f"{report.frames_per_second:.1f} frames/s ({parts})")
  if report.preview:
    print(f"swaptalk generate: preview {report.preview}")


def _needed(name: str, skip: bool, flag: str, have: bool, where: str) -> None:
  if not skip and not have:
    raise UserError(f"{where} has no {name} stage; add it or pass {flag}")


def _run_chain():
  """The stages from `swaptalk train` run directories (flax modules, jitted here)."""
  from swaptalk_jax.inference import stages  # pylint: disable=import-outside-toplevel
  dirs = stages.run_dirs(_RUN.value, _VQGAN.value, _SWAP.value, _LIPSYNC.value)
  if not dirs["vqgan"]:
    raise UserError("--vqgan DIR (or --run DIR holding vqgan/, or --bundle DIR) is required")
  for name, skip, flag in (("swap", _NO_SWAP.value, "--no-swap"), ("lipsync", _NO_SYNC.value,
                                                                  "--no-sync")):
    if not skip and not dirs[name]:
      raise UserError(f"--{name} DIR (or --run DIR holding {name}/) is required, or pass {flag}")
  vqgan = stages.load_vqgan(dirs["vqgan"])
  chain = stages.Chain(vqgan, batch_size=_BATCH.value)
  if not _NO_SWAP.value:
    chain.swap = stages.load_swap(dirs["swap"], vqgan)
  if not _NO_SYNC.value:
    chain.lipsync = stages.load_lipsync(dirs["lipsync"], vqgan)
  return chain


def _bundle_chain():
  """The stages from an exported bundle (jax.export functions; no flax/orbax needed)."""
  if any((_RUN.value, _VQGAN.value, _SWAP.value, _LIPSYNC.value)):
    raise UserError("--bundle replaces --run/--vqgan/--swap/--lipsync; give one or the other")
  from swaptalk_jax.inference import bundle  # pylint: disable=import-outside-toplevel
  chain = bundle.load_chain(_BUNDLE.value, batch_size=_BATCH.value)
  where = f"bundle {_BUNDLE.value}"
  _needed("swap", _NO_SWAP.value, "--no-swap", chain.swap is not None, where)
  _needed("lipsync", _NO_SYNC.value, "--no-sync", chain.lipsync is not None, where)
  if _NO_SWAP.value:
    chain.swap = None
  if _NO_SYNC.value:
    chain.lipsync = None
  return chain


def _main_with_errors(argv):
  try:
    _main(argv)
  except UserError as e:
    print(f"swaptalk generate: error: {e}", file=sys.stderr)
    sys.exit(1)


def main(argv):
  app.run(_main_with_errors, argv=_normalise(argv))
