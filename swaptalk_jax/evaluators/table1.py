"""`swaptalk eval`: the paper's Table 1 on the synthetic test split, through the one inference path.

Each held-out test clip becomes a case (table1_cases.py: source photo, target video, driving audio,
exact ground truth) that inference.pipeline.generate -- the function `swaptalk generate` runs --
turns into <out>/cases/<clip>/output.mp4. Output, target and truth are read back at the dataset's
resolution (the synthetic set's crops are its whole frames: the framing every stage was trained
on) and scored by metrics/clip_metrics.py, next to three baselines that need no model:
  no swap  the target video unchanged;   copy  the source photo, still, on every frame;
  colour only  the source photo averaged to 4x4 cells, still: its skin, hair and background
           colours without facial structure, so an ID retrieve near it is colour, not identity;
and the chain's own wrong-audio control, `shifted audio`: the same case generated with its driving
audio rotated by half its length (same voice and loudness, wrong timing), so a mouth column that
does not drop there is not following the audio; and, unless options.cascades is off, the two
pixel cascades (cascades.py: Swap->Sync and Sync->Swap, each stage a separate generate run on RGB
video; stage 2 re-detecting faces or keeping the target's track), the baselines of the paper's
claim C2 -- six single-stage generations more per clip (stage 1 once per order).
ID retrieve searches dlib descriptors of the test split's frames (the held-out identities), never
the source photo's own clip. FID and LSE-C/D run only on the user's converted weights; without
them their cells say so. metrics/table.py writes table1_<setting>.{md,csv,json}: means with
percentile bootstrap 95 % intervals over clips, every per-clip value in the JSON.
"""
import dataclasses
import os
import pathlib
import time
import wave
from typing import Callable, Optional

import numpy as np

from data_prep.synthetic import demo
from swaptalk_jax.data import dataset as dataset_lib
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.evaluators import cascades as cascades_lib
from swaptalk_jax.evaluators import table1_cases
from swaptalk_jax.metrics import clip_metrics, identity_preservation, table

ROWS = {"chain": "SwapTalk (this chain)",
        "shifted_audio": "this chain, audio shifted by half the clip (wrong sync)",
        **{key: spec[0] for key, spec in cascades_lib.CASCADES.items()},
        "no_swap": "no swap (target video)",
        "copy": "copy (source photo, still)",
        "colour": "colour only (source photo at 4x4 px, still)"}
NO_WEIGHTS = ("not run (no weights: --{flag}, a file from `swaptalk convert {net}`); never computed "
              "with a random network")


@dataclasses.dataclass
class EvalOptions:
  setting: str                       # 'self' | 'cross' (table1_cases.py)
  max_clips: int = 0                 # 0: every test clip
  max_frames: int = 0                # 0: whole clips
  seed: int = 0                      # case choices and bootstrap resampling
  framing: str = "synthetic"         # generate's crop template
  color_match: float = 0.0           # generate's --color_match (0: the quickstart's, see README)
  resolution: int = 128              # of the case media (dlib finds the faces from ~128 px)
  batch_size: int = 8                # faces per device call (generate's --batch_size)
  inception_weights: Optional[str] = None
  syncnet_weights: Optional[str] = None
  resamples: int = 1000              # per-clip means; set-level figures (FD-dlib, FID): 1/10
  cascades: bool = True              # the 4 pixel-cascade rows (6 single-stage runs a clip)


@dataclasses.dataclass
class Result:
  paths: dict                        # {'md', 'csv', 'json'}: pathlib.Path
  rows: dict                         # {row title: {column: table.Cell}}
  meta: dict


def load_chain(run: Optional[str], bundle: Optional[str], batch_size: int = 8):
  """The whole chain `swaptalk generate` runs: <run>/{vqgan,swap,lipsync} or an exported bundle."""
  if bool(run) == bool(bundle):
    raise UserError("give one of --run DIR (holding vqgan/, swap/, lipsync/) or --bundle DIR")
  where = run or bundle
  if not os.path.isdir(where):
    raise MissingFileError(f"{'run' if run else 'bundle'} directory {where} does not exist")
  if bundle:
    from swaptalk_jax.inference import bundle as bundle_lib  # pylint: disable=import-outside-toplevel
    chain = bundle_lib.load_chain(bundle, batch_size)
    missing = [n for n in ("swap", "lipsync") if getattr(chain, n) is None]
    if missing:
      raise UserError(f"bundle {bundle} has no {'/'.join(missing)} stage: Table 1 evaluates the "
                      "whole chain (swaptalk export --stages=vqgan,swap,lipsync)")
    return chain
  from swaptalk_jax.inference import stages  # pylint: disable=import-outside-toplevel
  dirs = stages.run_dirs(run, None, None, None)
  for name, path in dirs.items():
    if not os.path.isdir(path):
      raise MissingFileError(f"run directory {run} has no {name} stage ({path} does not exist); "
                             "Table 1 evaluates the whole chain: vqgan/, swap/, lipsync/")
  vqgan = stages.load_vqgan(dirs["vqgan"])
  return stages.Chain(vqgan, swap=stages.load_swap(dirs["swap"], vqgan),
                      lipsync=stages.load_lipsync(dirs["lipsync"], vqgan), batch_size=batch_size)


def row_keys(options: EvalOptions) -> list[str]:
  """The ROWS keys a run writes, in table order (the cascade rows only with options.cascades)."""
  return [k for k in ROWS if options.cascades or k not in cascades_lib.CASCADES]


def generate_options(options: EvalOptions):
  """generate's options for a case: its defaults, with eval's framing and colour match."""
  from swaptalk_jax.inference import pipeline  # pylint: disable=import-outside-toplevel
  return pipeline.Options(framing=options.framing, color_match=options.color_match, progress=False)


def generate_case(chain, case: demo.Case, options: EvalOptions, audio: str = "audio.wav",
                  output: str = "output.mp4"):
  """case source.png + target.mp4 + `audio` -> `output` by pipeline.generate; its Report."""
  from swaptalk_jax.inference import pipeline  # pylint: disable=import-outside-toplevel
  return pipeline.generate(chain, case.path("source.png"), case.path("target.mp4"),
                           case.path(output), case.path(audio), generate_options(options))


def write_shifted_audio(case: demo.Case) -> str:
  """The case's driving audio rotated by half its length -> audio_shifted.wav (its name)."""
  with wave.open(case.path("audio.wav"), "rb") as f:
    params, pcm = f.getparams(), np.frombuffer(f.readframes(f.getnframes()), "<i2")
  with wave.open(case.path("audio_shifted.wav"), "wb") as f:
    f.setparams(params)
    f.writeframes(np.roll(pcm, len(pcm) // 2).astype("<i2").tobytes())
  return "audio_shifted.wav"


def _wav_int16(path: str) -> np.ndarray:
  """The case's driving audio as written (16-bit mono PCM): LSE's int16 input."""
  with wave.open(path, "rb") as f:
    return np.frombuffer(f.readframes(f.getnframes()), "<i2").astype(np.int16)


# row key -> the case's video it scores (no_swap, copy and colour are made from the inputs)
VIDEOS = {"chain": "output.mp4", "shifted_audio": "output_shifted_audio.mp4",
          **{key: cascades_lib.output_name(key) for key in cascades_lib.CASCADES}}


def eval_clips(case: demo.Case, size: int, keys=tuple(ROWS)) -> dict[str, clip_metrics.EvalClip]:
  """{row key: EvalClip} of one generated case for the rows `keys`, every video at `size` px."""
  from swaptalk_jax.inference import media  # pylint: disable=import-outside-toplevel
  videos = {k: VIDEOS[k] for k in keys if k in VIDEOS}
  read = {name: demo.read_frames(case.path(name)) for name in [*videos.values(), "target.mp4"]}
  truth = np.load(case.path("ground_truth.npz"))["frames"]
  for name, frames in read.items():
    if len(frames) != case.num_frames:
      raise UserError(f"{case.path(name)}: {len(frames)} frames, the case has {case.num_frames}")
  photo = demo.resize_frames(media.read_photo(case.path("source.png"))[None], size)
  target = demo.resize_frames(read["target.mp4"], size)
  common = dict(target=target, identity=case.source_identity,
                audio=_wav_int16(case.path("audio.wav")), exact=demo.resize_frames(truth, size),
                gallery_exclude=case.source_clip)
  generated = {k: demo.resize_frames(read[name], size) for k, name in videos.items()}
  colour = identity_preservation.colour_only(photo[0])[None]
  generated.update(no_swap=target, copy=np.repeat(photo, case.num_frames, axis=0),
                   colour=np.repeat(colour, case.num_frames, axis=0))
  return {k: clip_metrics.EvalClip(case.target_clip, generated[k], **common) for k in keys}


def gallery(dataset: pathlib.Path, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """dlib descriptors, identities and clip ids of evenly spaced frames of every test clip."""
  images, labels, clips = dataset_lib.labelled_frames(dataset, demo.SPLIT,
                                                      demo.GALLERY_FRAMES_PER_CLIP, size)
  return identity_preservation.embed_crops(images), labels, clips


def metric_nets(options: EvalOptions) -> tuple[Optional[Callable], Optional[tuple]]:
  """(Inception embedder, SyncNet embedders) from the user's converted weights, else None."""
  inception_embed = syncnet = None
  if options.inception_weights:
    from swaptalk_jax.metrics import fid  # pylint: disable=import-outside-toplevel
    from swaptalk_jax.models import inception  # pylint: disable=import-outside-toplevel
    inception_embed = fid.inception_embedder(inception.load_variables(options.inception_weights))
  if options.syncnet_weights:
    from swaptalk_jax.metrics import lse  # pylint: disable=import-outside-toplevel
    from swaptalk_jax.models import syncnet as syncnet_model  # pylint: disable=import-outside-toplevel
    syncnet = lse.make_embedders(syncnet_model.load_variables(options.syncnet_weights))
  return inception_embed, syncnet


def _label_unweighted(cells: dict, options: EvalOptions) -> dict:
  if not options.inception_weights:
    cells["fid"] = table.skipped(NO_WEIGHTS.format(flag="inception_weights", net="inception"))
  if not options.syncnet_weights:
    cells["lse_c"] = cells["lse_d"] = table.skipped(NO_WEIGHTS.format(flag="syncnet_weights",
                                                                      net="syncnet"))
  return cells


def source_luminance(case: demo.Case, size: int) -> float:
  """Face-centre luminance of the case's source photo at `size` px: its skin-tone group."""
  from swaptalk_jax.inference import media  # pylint: disable=import-outside-toplevel
  photo = demo.resize_frames(media.read_photo(case.path("source.png"))[None], size)
  return float(identity_preservation.face_luminance(photo)[0])


def by_source_tone(rows: dict, cases: list) -> tuple[dict, str]:
  """(meta, markdown) of the per-clip figures grouped by the source photo's skin tone: the
  mouth measure and the micro VQGAN both read darker faces less well (docs/lipsync_table_v.md)."""
  groups = {c["target_clip"]: c["source_tone"] for c in cases}
  counts = {g: list(groups.values()).count(g) for g in sorted(set(groups.values()))}
  means = table.group_means(rows, groups)
  split = identity_preservation.TONE_SPLIT
  heading = (f"### By the source's skin tone (face-centre luminance of the source photo < "
             f"{split:g}: darker); means over each group's clips")
  return (dict(split=split, counts=counts, means=means),
          table.group_markdown(means, counts, heading))


def _case_meta(case: demo.Case, report, labels, clips, cascade_reports=()) -> dict:
  searched = clips != case.source_clip
  meta = dict(target_clip=case.target_clip, source_identity=case.source_identity,
              source_clip=case.source_clip, audio_clip=case.audio_clip, frames=case.num_frames,
              face_frames=report.face_frames, generate_seconds=round(report.seconds, 2),
              chance_id_retrieve=100.0 * float(np.mean(labels[searched] == case.source_identity)),
              dir=case.dir)
  for r in cascade_reports:   # stage 2's count shows how often the re-detection lost the face
    meta[f"{r.key}_face_frames"] = [r.stage1.face_frames, r.stage2.face_frames]
    meta[f"{r.key}_stage2_seconds"] = round(r.stage2.seconds, 2)
  return meta


def generate_cascades(views: dict, case: demo.Case, options: EvalOptions) -> list:
  """Every pixel cascade of one case (cascades.py) -> their CascadeReports."""
  return cascades_lib.run_all(views, case.path("source.png"), case.path("target.mp4"),
                              case.path("audio.wav"), case.path, generate_options(options))


def evaluate(chain, data: str, out: str, options: EvalOptions,
             log: Callable[[str], None] = print) -> Result:
  """Generates every case (module docstring) with `chain` and writes Table 1 under `out`."""
  start = time.perf_counter()
  dataset, clips = table1_cases.held_out_clips(data)
  chosen = clips[:options.max_clips] if options.max_clips > 0 else clips
  if len(chosen) < 2:
    raise UserError(f"Table 1 needs >= 2 test clips (intervals over clips); {dataset} gives "
                    f"{len(chosen)}{' with --max_clips' if options.max_clips else ''}")
  for target in chosen:   # a setting the split cannot give fails before any generation
    table1_cases.choice(clips, target, options.setting, options.seed)
  size = int(demo.synthetic_params(dataset)["resolution"])
  inception_embed, syncnet = metric_nets(options)
  descriptors, labels, gallery_clips = gallery(dataset, size)
  out_dir = pathlib.Path(out)
  keys = row_keys(options)
  views = ({stage: cascades_lib.stage_only(chain, stage) for stage in cascades_lib.STAGES}
           if options.cascades else None)
  per_row, cases = {k: [] for k in keys}, []
  for i, target in enumerate(chosen):
    case = table1_cases.write_case(dataset, clips, target, options.setting, out_dir / "cases",
                                   options.seed, options.resolution, options.max_frames)
    report = generate_case(chain, case, options)
    generate_case(chain, case, options, write_shifted_audio(case), "output_shifted_audio.mp4")
    cascade_reports = generate_cascades(views, case, options) if views else []
    for key, clip in eval_clips(case, size, keys).items():
      per_row[key].append(clip)
    cases.append(_case_meta(case, report, labels, gallery_clips, cascade_reports))
    luminance = source_luminance(case, size)
    cases[-1].update(source_luminance=round(luminance, 1),
                     source_tone=identity_preservation.tone_group(luminance))
    cascade_note = "".join(f"; {r.key} faces {r.stage1.face_frames}/{r.stage2.face_frames} "
                           f"({r.stage2.seconds:.1f} s)" for r in cascade_reports)
    log(f"clip {i + 1}/{len(chosen)} {target.clip_id}: source {case.source_clip} frame 0, audio "
        f"{case.audio_clip}; {report.frames} frames generated in {report.seconds:.1f} s"
        f"{cascade_note}")
  metric_options = clip_metrics.Options(
      setting=options.setting, gallery=(descriptors, labels, gallery_clips),
      inception_embed=inception_embed, syncnet_embedders=syncnet, seed=options.seed,
      resamples=options.resamples, set_resamples=max(10, options.resamples // 10), embed_cache={})
  rows = {ROWS[k]: _label_unweighted(clip_metrics.compute(per_row[k], metric_options), options)
          for k in keys}
  tone_meta, tone_markdown = by_source_tone(rows, cases)
  meta = dict(setting=options.setting, data=str(dataset), options=dataclasses.asdict(options),
              score_size=size, gallery_frames=int(len(labels)),
              chance_id_retrieve=float(np.mean([c["chance_id_retrieve"] for c in cases])),
              by_source_tone=tone_meta, cases=cases,
              seconds=round(time.perf_counter() - start, 1))
  title = (f"synthetic test split, {len(cases)} held-out clips x {cases[0]['frames']} frames, "
           f"scored at {size} px; ID retrieve chance {meta['chance_id_retrieve']:.1f} %")
  paths = table.write(out_dir, options.setting, rows, meta, title, tone_markdown)
  return Result(paths, rows, meta)


def evaluate_run(run: Optional[str], bundle: Optional[str], data: str, out: str,
                 options: EvalOptions, log: Callable[[str], None] = print) -> Result:
  """`swaptalk eval`: checks the dataset before loading the chain, then evaluate()."""
  table1_cases.held_out_clips(data)
  chain = load_chain(run, bundle, options.batch_size)
  return evaluate(chain, data, out, options, log)
