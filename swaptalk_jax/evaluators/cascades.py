"""Table 1's pixel-cascade baselines: the chain's two stages run as two separate RGB tools.

SwapTalk's claim C2 is that doing swap and lip-sync in one latent space beats chaining a face
swapper and a lip-syncer in pixel space. The cascades here are built from OUR two stages, so the
comparison isolates the RGB hand-off (decode, paste back, H.264, re-detect, re-align, re-encode):

  Swap->Sync  stage 1: the swap stage alone (`swaptalk generate --no-sync`: source photo + target
              video + the driving audio) writes cascade_swap_only.mp4; stage 2: the lip-sync
              stage alone (`--no-swap`) on THAT video, driven by the same audio, writes
              output_swap_sync.mp4 -- its faces are tracked, aligned and encoded afresh.
  Sync->Swap  the reverse: lip-sync the target first, then swap the face of the lip-synced video.

Each order comes twice: with stage 2 re-detecting the faces of stage 1's video (a real two-tool
pipeline), and with stage 2 cropping where the target's faces were tracked ("target's face track",
pipeline.Options.track_from). The second isolates the RGB round trip (decode, paste, H.264, crop,
re-encode) from the detector: at the micro VQGAN's 32 px the decoded faces are blurs dlib finds
in few frames, so the re-detected cascades' stage 2 mostly passes stage 1's frames through.

Both stages are inference.pipeline.generate (no second inference path) on a view of the chain
holding one stage (`stage_only`: a shallow copy made after the chain's jitted functions, so those
and the params are shared, not recompiled). Frames in which stage 2 finds no face pass through as stage 1 wrote them, as in any
RGB pipeline; each case's meta records both stages' face-frame counts.
"""
import copy
import dataclasses

from swaptalk_jax.errors import UserError

# key -> (Table 1 row title, stage order, stage 2 re-detects its faces)
CASCADES = {
    "swap_sync": ("Swap->Sync (pixel cascade)", ("swap", "lipsync"), True),
    "sync_swap": ("Sync->Swap (pixel cascade)", ("lipsync", "swap"), True),
    "swap_sync_kept": ("Swap->Sync (pixel cascade, target's face track)", ("swap", "lipsync"),
                       False),
    "sync_swap_kept": ("Sync->Swap (pixel cascade, target's face track)", ("lipsync", "swap"),
                       False)}
STAGES = ("swap", "lipsync")


def stage_only(chain, stage: str):
  """A view of `chain` (stages.Chain or bundle.BundleChain) with only `stage` after the VQGAN:
  pipeline.generate then runs that stage alone (`--no-sync` for swap, `--no-swap` for lipsync)."""
  if stage not in STAGES:
    raise UserError(f"unknown stage {stage!r}; choose one of {STAGES}")
  if getattr(chain, stage) is None:
    raise UserError(f"the chain has no {stage} stage: a pixel cascade needs swap and lipsync")
  for fn in ("encode", "decode", f"{stage}_fn"):
    getattr(chain, fn)   # Chain's jitted functions are cached properties: made before the copy,
                         # the view shares them (and their compiled programs) with the chain
  view = copy.copy(chain)
  for other in STAGES:
    if other != stage:
      setattr(view, other, None)
  return view


def output_name(key: str) -> str:
  """The cascade's final video in a case folder."""
  return f"output_{key}.mp4"


def stage1_name(order: tuple) -> str:
  """Stage 1's RGB video (stage 2's target): the first stage alone, shared by both variants."""
  return f"cascade_{order[0]}_only.mp4"


@dataclasses.dataclass
class CascadeReport:
  key: str
  stage1: object        # pipeline.Report of the first stage (shared by the order's two variants)
  stage2: object        # pipeline.Report of the second


def run_all(views: dict, source: str, target: str, audio: str, case_path, options) -> list:
  """Every cascade (CASCADES) on one case; stage 1 runs once per order.

  views: {'swap': stage_only(chain, 'swap'), 'lipsync': stage_only(chain, 'lipsync')};
  case_path(name) -> a path in the case folder; options: pipeline.Options for every stage.
  """
  from swaptalk_jax.inference import pipeline  # pylint: disable=import-outside-toplevel

  def stage(name, video, out, stage_options):
    return pipeline.generate(views[name], source if name == "swap" else None, video, out, audio,
                             stage_options)
  first_runs, reports = {}, []
  for key, (_, order, redetect) in CASCADES.items():
    middle = case_path(stage1_name(order))
    if order not in first_runs:
      first_runs[order] = stage(order[0], target, middle, options)
    # Stage 2's input is generated: where its faces are not found they pass through (counted).
    # Without re-detection it crops where the target's faces were tracked (Options.track_from).
    report2 = stage(order[1], middle, case_path(output_name(key)),
                    dataclasses.replace(options, allow_no_face=True,
                                        track_from=None if redetect else target))
    reports.append(CascadeReport(key, first_runs[order], report2))
  return reports
