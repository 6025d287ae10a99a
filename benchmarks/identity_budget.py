"""Where a trained chain loses the source's identity: the same cross-driven held-out cases scored
after each step of the chain, from the exact truth down to the chain's output.

  python benchmarks/identity_budget.py --run outputs/chain --data data --out /tmp/budget \
      [--max_clips 8] [--max_frames 25]
  python benchmarks/identity_budget.py --compare A/identity_budget.json B/identity_budget.json

Every row pastes a face into the target's frames through the chain's own face track and feathered
mask (pipeline.generate's), and is scored as `swaptalk eval` scores ID retrieve (frames at the
dataset's resolution, dlib descriptors of SYNTHETIC_FACE_BOX, gallery: the held-out frames outside
the source photo's clip). Each row adds one loss to the row above it:

  exact truth                 the rendered swap-and-resync frames (the ceiling)
  truth face, pasted          the truth's face cropped at the case's resolution and pasted back
  truth face at S px, pasted  ... cropped at the chain's face size S: what the resolution keeps
  truth through the VQGAN     D(E(truth crop)): the best a token-space swap can do
  swap only                   generate without lip-sync (stage_only): what the swap keeps
  chain                       generate: what lip-sync keeps

References: the source photo's own tokens decoded and pasted on every frame (D(S_VQ): what the
source's tokens carry, in the photo's pose), the target (no swap), the source photo itself. Per
row: ID retrieve % and the mean dlib distance of each frame to the exact truth's descriptor of the
same frame (lower: nearer the identity that should appear), means over clips with intervals, and
for each step of the chain its paired change of ID retrieve against the row above (same clips).
`--compare` pairs two such results (two chains scored on the same data): per row, B - A over the
clips both scored, with a bootstrap interval over those clips; nothing is generated.
"""
import argparse
import json
import os
import pathlib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402

from data_prep.synthetic import demo  # noqa: E402
from swaptalk_jax.errors import UserError  # noqa: E402
from swaptalk_jax.evaluators import cascades, table1, table1_cases  # noqa: E402
from swaptalk_jax.face.detect import DetectorConfig  # noqa: E402
from swaptalk_jax.face.landmarks import LandmarkPredictor  # noqa: E402
from swaptalk_jax.face.track import TrackerConfig  # noqa: E402
from swaptalk_jax.inference import faces, media, pipeline  # noqa: E402
from swaptalk_jax.metrics import clip_metrics, identity_preservation, table  # noqa: E402
from swaptalk_jax.video import decode  # noqa: E402

ROWS = (("truth", "exact truth"),
        ("truth_pasted", "truth face, pasted"),
        ("truth_small", "truth face at S px, pasted"),
        ("truth_vq", "truth through the VQGAN"),
        ("swap_only", "swap only (no lip-sync)"),
        ("chain", "chain (swap + lip-sync)"),
        ("source_vq", "ref: source tokens D(S_VQ), pasted"),
        ("no_swap", "ref: target (no swap)"),
        ("photo", "ref: source photo, still"))
CHAIN_STEPS = tuple(k for k, _ in ROWS[:6])   # each adds one loss to the row above it
SWAP_ONLY_VIDEO = "output_swap_only.mp4"


def to_crop_at(to_crop: np.ndarray, size: int, new_size: int) -> np.ndarray:
  """A frame->crop affine made for `size`-px crops, for the same crop at `new_size` px (pixel
  centres kept: u' + 0.5 = k (u + 0.5))."""
  k = new_size / size
  scaled = np.asarray(to_crop, np.float64) * k
  scaled[..., 2] += 0.5 * (k - 1.0)
  return scaled


def pasted(target: np.ndarray, crops: dict, track: faces.TargetTrack, size: int,
           feather: float) -> np.ndarray:
  """Target frames with crops {t: [K,K,3]} pasted through the track's affine (made for `size`-px
  crops, rescaled to K); frames without a crop stay the target's."""
  out = target.copy()
  for t, face in crops.items():
    out[t] = faces.paste_face(target[t], face, to_crop_at(track.to_crop[t], size, face.shape[0]),
                              feather)
  return out


def model_free_rows(chain, case: demo.Case, options: pipeline.Options) -> dict:
  """{row key: frames at the case's resolution} of every row but generate's two."""
  target = demo.read_frames(case.path("target.mp4"))
  truth = np.load(case.path("ground_truth.npz"))["frames"]
  size = chain.image_size
  align_config, threshold = pipeline.face_settings(options, size)
  predictor = LandmarkPredictor()
  detector = DetectorConfig(min_face=options.min_face, threshold=threshold)
  track = faces.track_target(decode.probe(case.path("target.mp4")), align_config,
                             TrackerConfig(detect_every=options.detect_every, detector=detector),
                             options.scene_threshold, predictor)
  if not len(target) == len(truth) == track.num_frames:
    raise UserError(f"case {case.dir}: target {len(target)}, tracked {track.num_frames} and truth "
                    f"{len(truth)} frames differ")
  tracked = [int(t) for t in np.flatnonzero(track.has_face)]
  if not tracked:
    raise UserError(f"case {case.dir}: no face tracked in the target")
  big = {t: faces.crop(truth[t], to_crop_at(track.to_crop[t], size, case.resolution),
                       case.resolution) for t in tracked}
  small = {t: faces.crop(truth[t], track.to_crop[t], size) for t in tracked}
  through_vq = chain.decode_tokens(chain.encode_images(np.stack(list(small.values()))))
  photo = media.read_photo(case.path("source.png"))
  source = faces.source_face(photo, align_config, None, path=case.path("source.png"),
                             predictor=predictor, threshold=threshold)
  source_vq = chain.decode_tokens(chain.encode_images(source.crop[None]))[0]

  def paste(crops):
    return pasted(target, crops, track, size, options.feather)
  return dict(truth=truth, truth_pasted=paste(big), truth_small=paste(small),
              truth_vq=paste(dict(zip(tracked, through_vq))),
              source_vq=paste({t: source_vq for t in tracked}), no_swap=target,
              photo=np.repeat(photo[None], len(truth), axis=0))


def score_case(frames: dict, case: demo.Case, score_size: int, gallery: tuple) -> dict:
  """{row key: (ID retrieve %, mean dlib distance to the truth's descriptor per frame)}."""
  metric_options = clip_metrics.Options(setting="cross", gallery=gallery)
  embeddings = {k: identity_preservation.embed_crops(demo.resize_frames(v, score_size))
                for k, v in frames.items()}
  out = {}
  for key, emb in embeddings.items():
    clip = clip_metrics.EvalClip(case.target_clip, frames[key], frames["no_swap"],
                                 case.source_identity, gallery_exclude=case.source_clip)
    out[key] = (clip_metrics.id_retrieve(clip, emb, metric_options),
                float(np.linalg.norm(emb - embeddings["truth"], axis=1).mean()))
  return out


def run(args) -> dict:
  start = time.perf_counter()
  chain = table1.load_chain(args.run, None, args.batch_size)
  dataset, clips = table1_cases.held_out_clips(args.data)
  chosen = clips[:args.max_clips] if args.max_clips > 0 else clips
  score_size = int(demo.synthetic_params(dataset)["resolution"])
  gallery = table1.gallery(dataset, score_size)
  eval_options = table1.EvalOptions(setting="cross", max_frames=args.max_frames, seed=args.seed)
  gen_options = table1.generate_options(eval_options)
  swap_view = cascades.stage_only(chain, "swap")
  per_clip, chances = {k: {} for k, _ in ROWS}, []
  out_dir = pathlib.Path(args.out)
  for i, target in enumerate(chosen):
    case = table1_cases.write_case(dataset, clips, target, "cross", out_dir / "cases", args.seed,
                                   eval_options.resolution, args.max_frames)
    table1.generate_case(chain, case, eval_options)
    table1.generate_case(swap_view, case, eval_options, output=SWAP_ONLY_VIDEO)
    searched = gallery[2] != case.source_clip
    chances.append(100.0 * float(np.mean(gallery[1][searched] == case.source_identity)))
    frames = model_free_rows(chain, case, gen_options)
    frames["chain"] = demo.read_frames(case.path("output.mp4"))
    frames["swap_only"] = demo.read_frames(case.path(SWAP_ONLY_VIDEO))
    for key, value in score_case(frames, case, score_size, gallery).items():
      per_clip[key][case.target_clip] = value
    print(f"clip {i + 1}/{len(chosen)} {case.target_clip} (source {case.source_clip}): "
          + ", ".join(f"{k} {per_clip[k][case.target_clip][0]:.0f}%" for k, _ in ROWS),
          flush=True)
  rows, above = {}, None
  for key, title in ROWS:
    retrieve = table.from_clips({c: v[0] for c, v in per_clip[key].items()}, args.seed)
    distance = table.from_clips({c: v[1] for c, v in per_clip[key].items()}, args.seed)
    rows[key] = dict(title=title, id_retrieve=retrieve.to_json(), distance=distance.to_json())
    if above is not None and key in CHAIN_STEPS:   # what this step costs, paired over clips
      rows[key]["step_id_retrieve"] = table.from_clips(
          {c: per_clip[key][c][0] - per_clip[above][c][0] for c in per_clip[key]},
          args.seed).to_json()
    above = key
  return dict(run=args.run, clips=len(chosen), max_frames=args.max_frames,
              face_size=chain.image_size, score_size=score_size,
              chance_id_retrieve=float(np.mean(chances)), rows=rows,
              seconds=round(time.perf_counter() - start, 1))


def _cell(c: dict) -> str:
  return f"{c['value']:.3g} [{c['low']:.3g}, {c['high']:.3g}]"


def report(result: dict) -> str:
  lines = [f"identity budget of {result['run']}: {result['clips']} held-out clips cross-driven"
           f"{' x ' + str(result['max_frames']) + ' frames' if result['max_frames'] else ''}, "
           f"faces generated at {result['face_size']} px, scored at {result['score_size']} px; "
           f"ID retrieve chance {result['chance_id_retrieve']:.1f} %",
           f"{'row':38s} {'ID retrieve % (dlib)':>22s} {'step: paired change':>24s} "
           f"{'dist. to truth descriptor':>28s}"]
  for row in result["rows"].values():
    step = _cell(row["step_id_retrieve"]) if "step_id_retrieve" in row else ""
    lines.append(f"{row['title']:38s} {_cell(row['id_retrieve']):>22s} {step:>24s} "
                 f"{_cell(row['distance']):>28s}")
  lines.append(f"{result['seconds']:.0f} s wall")
  return "\n".join(lines)


def compare(a: dict, b: dict, seed: int = 0) -> str:
  """Per row of two `run` results: A, B and the paired B - A (ID retrieve and distance) over the
  clips both scored, percentile bootstrap over clips (metrics/table.from_clips)."""
  lines = [f"B - A, paired over clips: A = {a['run']}, B = {b['run']}",
           f"{'row':38s} {'figure':12s} {'A':>22s} {'B':>22s} {'B - A [95% CI]':>26s}"]
  for key, row in a["rows"].items():
    if key not in b["rows"]:
      continue
    for figure in ("id_retrieve", "distance"):
      per_a, per_b = row[figure]["per_clip"], b["rows"][key][figure]["per_clip"]
      clips = sorted(set(per_a) & set(per_b))
      if not clips:
        raise UserError(f"row {key!r}: the two results share no clip (scored on other data?)")
      diff = table.from_clips({c: per_b[c] - per_a[c] for c in clips}, seed)
      lines.append(f"{row['title']:38s} {figure:12s} {_cell(row[figure]):>22s} "
                   f"{_cell(b['rows'][key][figure]):>22s} "
                   f"{_cell(diff.to_json()):>26s}")
  return "\n".join(lines)


def _compare_files(paths, seed: int) -> int:
  try:
    results = []
    for path in paths:
      try:
        results.append(json.loads(pathlib.Path(path).read_text()))
      except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable identity_budget.json ({e})") from e
    try:
      print(compare(*results, seed=seed))
    except KeyError as e:
      raise UserError(f"{paths}: not identity_budget.json results (no key {e})") from e
  except UserError as e:
    print(f"identity_budget: {e}", file=sys.stderr)
    return 1
  return 0


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--run", help="chain folder: vqgan/ swap/ lipsync/")
  parser.add_argument("--data", help="the prepared synthetic data folder")
  parser.add_argument("--out", help="folder for the cases, videos and JSON")
  parser.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"),
                      help="pair two identity_budget.json results (B - A) instead of a run")
  parser.add_argument("--max_clips", type=int, default=0, help="0: every held-out clip")
  parser.add_argument("--max_frames", type=int, default=25, help="0: whole clips")
  parser.add_argument("--batch_size", type=int, default=8)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  if args.compare:
    return _compare_files(args.compare, args.seed)
  if not (args.run and args.data and args.out):
    parser.error("--run, --data and --out are required (or --compare A_JSON B_JSON)")
  try:
    result = run(args)
  except UserError as e:
    print(f"identity_budget: {e}", file=sys.stderr)
    return 1
  pathlib.Path(args.out, "identity_budget.json").write_text(json.dumps(result, indent=1) + "\n")
  print(report(result))
  return 0


if __name__ == "__main__":
  sys.exit(main())
