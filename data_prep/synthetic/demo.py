"""One demo case of the whole chain on HELD-OUT synthetic identities, and its score against the
exact ground truth: what tools/quickstart.sh generates and prints.

  write_case(data_dir, out, seed): from the test split of a prepared synthetic set picks identity A
    (the source photo: frame 0 of one of A's clips), identity B (the target video: one of B's clips
    with its own audio) and a clip C of a third identity (the driving audio; another clip of A when
    the split has only two identities), and renders the exact ground truth: A's face moving as B's
    clip with C's mouth track, by the same renderer and seeds that rendered the dataset.
  score_case(case_dir, output): identity retrieval of the output's faces among the split's
    identities (dlib, evaluators/swap_pairs.py) and mouth-opening correlation with the ground truth
    (metrics/mouth.py), next to the target video itself (no swap, no sync) and the ground truth.

Faces are scored on whole frames resized to the dataset's resolution: the synthetic set's records
ARE whole rendered frames (crop_to_frame is the identity), so that is exactly the framing of the
identity gallery and of the crops every stage was trained on.

  strip_image(case, outputs): a picture to look at: per sampled frame, the source photo | the
    target frame | each named output | the exact ground truth, labelled above (e.g. the quickstart
    recipe's output next to the long recipe's on the same case).

Command line: python -m data_prep.synthetic.demo write --data DIR --out CASE [--seed N]
              python -m data_prep.synthetic.demo score --case CASE --output OUT.mp4
              python -m data_prep.synthetic.demo strip --case CASE --output NAME=OUT.mp4 ...
                  --out STRIP.png [--frames 4]
"""
import argparse
import dataclasses
import json
import pathlib
import sys
import wave

import numpy as np

from data_prep.synthetic.appearance import sample_identity
from data_prep.synthetic.clips import clip_motion, clip_name, clip_speech, num_frames_for
from data_prep.synthetic.motion import Motion
from data_prep.synthetic.renderer import render
from swaptalk_jax.data.clip import FPS, SAMPLE_RATE
from swaptalk_jax.errors import MissingFileError, UserError
from swaptalk_jax.metrics import mouth_frames

SPLIT = "test"
_DEMO = 7   # rng purpose key of the case's choices (clips.py keys are 1-3)
# The lip contour of every mouth figure (metrics/mouth_frames.py: inner; docs/lipsync_table_v.md).
LIPS = mouth_frames.LIPS
GALLERY_FRAMES_PER_CLIP = 8
CASE_FILES = ("case.json", "source.png", "target.mp4", "audio.wav", "ground_truth.npz")


@dataclasses.dataclass(frozen=True)
class Case:
  """Where a written case lives and what it shows (case.json holds the same fields)."""
  dir: str
  dataset: str                 # the prepared dataset directory (holding metadata.json)
  source_identity: str         # A
  source_clip: str             # the clip whose frame 0 is the photo
  target_clip: str             # a clip of B
  audio_clip: str              # C
  num_frames: int
  resolution: int              # of the case's media (the dataset's own may be smaller)

  def path(self, name: str) -> str:
    return str(pathlib.Path(self.dir) / name)


def dataset_dir(data: str) -> pathlib.Path:
  """The synthetic dataset under `data` (the `--out` of `swaptalk prepare synthetic`), or `data`
  itself when it holds metadata.json."""
  from swaptalk_jax.data import pipelines  # pylint: disable=import-outside-toplevel
  if (pathlib.Path(data) / "metadata.json").exists():
    return pathlib.Path(data)
  if not pathlib.Path(data).is_dir():
    raise MissingFileError(f"dataset directory {data} does not exist: run `swaptalk prepare "
                           f"synthetic --out {data}` first")
  return pipelines.dataset_path(dict(name="synthetic", data_dir=str(data)))


def synthetic_params(dataset: pathlib.Path) -> dict:
  """The render parameters `swaptalk prepare synthetic` stored in the dataset's metadata.json."""
  with (dataset / "metadata.json").open() as f:
    params = json.load(f).get("params", {})
  needed = ("identities", "test_identities", "clips_per_identity", "seconds", "resolution", "seed")
  if any(k not in params for k in needed):
    raise UserError(f"{dataset}/metadata.json: not a synthetic set (its params lack "
                    f"{[k for k in needed if k not in params]}); run `swaptalk prepare synthetic`")
  return params


def pick(params: dict, seed: int) -> dict:
  """Identities and clip indices of the case (deterministic for `seed`): A, B distinct held-out
  identities; C a third one when the split has one, else another clip of A (never the photo's)."""
  n, m, k = params["identities"], params["test_identities"], params["clips_per_identity"]
  if m < 2 or k < 2:
    raise UserError(f"the demo needs >= 2 held-out identities with >= 2 clips each (identity "
                    f"retrieval looks for A outside its photo's clip); the dataset has {m} "
                    f"identities x {k} clips")
  held_out = list(range(n - m, n))
  rng = np.random.default_rng([seed, _DEMO])
  a, b = (int(i) for i in rng.choice(held_out, 2, replace=False))
  photo_clip, target_clip = int(rng.integers(k)), int(rng.integers(k))
  others = [i for i in held_out if i not in (a, b)]
  if others:
    c, audio_clip = int(rng.choice(others)), int(rng.integers(k))
  else:
    c, audio_clip = a, (photo_clip + 1 + int(rng.integers(k - 1))) % k
  return dict(a=a, b=b, c=c, photo_clip=photo_clip, target_clip=target_clip,
              audio_clip=audio_clip)


def write_wav(path: str, audio: np.ndarray, rate: int = SAMPLE_RATE) -> str:
  """16-bit mono PCM wav of float audio in [-1, 1]."""
  pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
  with wave.open(path, "wb") as f:
    f.setnchannels(1)
    f.setsampwidth(2)
    f.setframerate(rate)
    f.writeframes(pcm.tobytes())
  return path


def write_case(data: str, out: str, seed: int = 0, resolution: int = 128,
               choice: dict | None = None, max_frames: int | None = None) -> Case:
  """Writes source.png, target.mp4 (with B's audio), audio.wav (C's), ground_truth.npz (frames
  uint8 [T,R,R,3], landmarks [T,68,2], driving_openness and target_openness [T]) and case.json
  under `out`, at `resolution` px (dlib finds the faces reliably from ~128 px).

  choice: the case's identities and clips (pick()'s keys; `swaptalk eval` builds one per test
  clip), default pick(params, seed); max_frames: only the clips' first frames (shorter cases)."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.video.write import write_video  # pylint: disable=import-outside-toplevel
  dataset = dataset_dir(data)
  params = synthetic_params(dataset)
  p = choice or pick(params, seed)
  s, full = params["seed"], num_frames_for(params["seconds"])
  frames = min(full, max_frames or full)
  ident_a, ident_b = sample_identity(p["a"], s), sample_identity(p["b"], s)

  def motion(identity, clip):   # drawn at the clip's full length, then cut: the dataset's frames
    return Motion.from_array(clip_motion(identity, clip, s, full).as_array()[:frames])

  def speech(identity, clip):
    audio, openness = clip_speech(identity, clip, s, full)
    return audio[:frames * len(audio) // full], openness[:frames]

  photo_motion = Motion.from_array(clip_motion(p["a"], p["photo_clip"], s, full).as_array()[:1])
  _, photo_openness = clip_speech(p["a"], p["photo_clip"], s, full)
  photo, _ = render(ident_a, photo_motion, photo_openness[:1], resolution)
  target_motion = motion(p["b"], p["target_clip"])
  target_audio, target_openness = speech(p["b"], p["target_clip"])
  target, _ = render(ident_b, target_motion, target_openness, resolution)
  driving_audio, driving_openness = speech(p["c"], p["audio_clip"])
  truth, truth_landmarks = render(ident_a, target_motion, driving_openness, resolution)

  folder = pathlib.Path(out)
  folder.mkdir(parents=True, exist_ok=True)
  case = Case(dir=str(folder), dataset=str(dataset.resolve()), source_identity=ident_a.name,
              source_clip=clip_name(p["a"], p["photo_clip"]),
              target_clip=clip_name(p["b"], p["target_clip"]),
              audio_clip=clip_name(p["c"], p["audio_clip"]), num_frames=frames,
              resolution=resolution)
  Image.fromarray(photo[0]).save(case.path("source.png"))
  write_video(case.path("target.mp4"), target, fps=FPS, audio=target_audio,
              sample_rate=SAMPLE_RATE, crf=12, preset="ultrafast")
  write_wav(case.path("audio.wav"), driving_audio)
  np.savez_compressed(case.path("ground_truth.npz"), frames=truth, landmarks=truth_landmarks,
                      driving_openness=driving_openness, target_openness=target_openness)
  fields = dataclasses.asdict(case)
  fields.pop("dir")
  pathlib.Path(case.path("case.json")).write_text(json.dumps(fields, indent=1) + "\n")
  return case


def load_case(case_dir: str) -> Case:
  """The case written by write_case (one-line error naming a missing file)."""
  folder = pathlib.Path(case_dir)
  for name in CASE_FILES:
    if not (folder / name).is_file():
      raise MissingFileError(f"demo case file {folder / name} does not exist: write the case "
                             "with `python -m data_prep.synthetic.demo write`")
  return Case(dir=str(folder), **json.loads((folder / "case.json").read_text()))


def read_frames(path: str) -> np.ndarray:
  """All frames of a video at 25 fps, uint8 [T,H,W,3]."""
  from swaptalk_jax.video import decode  # pylint: disable=import-outside-toplevel
  if not pathlib.Path(path).is_file():
    raise MissingFileError(f"video {path} does not exist")
  try:
    return np.stack(list(decode.iter_frames(path)))
  except decode.MediaError as e:
    raise UserError(str(e)) from None


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
  """uint8 [T,H,W,3] -> [T,size,size,3] by area interpolation (unchanged when already that size)."""
  import cv2  # pylint: disable=import-outside-toplevel
  if frames.shape[1] == size and frames.shape[2] == size:
    return frames
  return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in frames])


def score_case(case_dir: str, output: str) -> dict:
  """Figures of `output` (the generated mp4) against the case's exact ground truth.

  Returns {'rows': {name: {'id_top1', 'mouth_corr'}} for 'output', 'target' (the target video:
  no swap, no sync) and 'ground_truth' (its own ceiling), 'colour_id_top1' (the source photo
  reduced to its colours, `identity_preservation.colour_only`: what colour alone retrieves),
  'chance_id_top1', 'target_track_corr'
  (the target's own exact mouth track vs the driving one's: what keeping B's lips scores with
  perfect landmarks), 'frames', 'gallery'}.
  id_top1: share of frames whose nearest dlib descriptor among the split's frames (outside the
  photo's clip) is A. mouth_corr: Pearson correlation over the clip of dlib's mouth opening
  (LIPS) on the frames vs on the ground truth.
  """
  from swaptalk_jax.data.dataset import labelled_frames  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.evaluators import swap_pairs  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.inference import media  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.metrics import identity_preservation  # pylint: disable=import-outside-toplevel
  from swaptalk_jax.metrics import lmd, mouth  # pylint: disable=import-outside-toplevel
  case = load_case(case_dir)
  dataset = dataset_dir(case.dataset)
  size = int(synthetic_params(dataset)["resolution"])
  truth = np.load(case.path("ground_truth.npz"))
  videos = dict(output=read_frames(output), target=read_frames(case.path("target.mp4")),
                ground_truth=truth["frames"])
  for name, frames in videos.items():
    if frames.shape[0] != case.num_frames:
      raise UserError(f"{output if name == 'output' else case.path('target.mp4')}: "
                      f"{frames.shape[0]} frames, the case has {case.num_frames}")
  gallery, labels, clips = labelled_frames(str(dataset), SPLIT, GALLERY_FRAMES_PER_CLIP, size)
  keep = clips != case.source_clip
  gallery, labels = gallery[keep], labels[keep]
  crops = {name: resize_frames(frames, size) for name, frames in videos.items()}
  truth_points, boxes = lmd.crop_landmarks(crops["ground_truth"],
                                           identity_preservation.SYNTHETIC_FACE_BOX)
  gallery_descriptors = swap_pairs.dlib_descriptors(gallery)   # once for every row below

  def id_top1(faces):
    return float(np.mean(swap_pairs.nearest_hits(
        swap_pairs.dlib_descriptors(faces), np.full(len(faces), case.source_identity),
        gallery_descriptors, labels)))
  rows = {}
  for name, faces in crops.items():
    points, _ = lmd.crop_landmarks(faces, boxes=boxes, name=name)
    rows[name] = dict(id_top1=id_top1(faces),
                      mouth_corr=mouth.opening_correlation(points, truth_points, LIPS))
  photo = resize_frames(media.read_photo(case.path("source.png"))[None], size)[0]
  return dict(rows=rows, colour_id_top1=id_top1(identity_preservation.colour_only(photo)[None]),
              chance_id_top1=float(np.mean(labels == case.source_identity)),
              target_track_corr=mouth.pearson(truth["target_openness"],
                                              truth["driving_openness"]),
              frames=case.num_frames, gallery=int(len(gallery)))


ROW_NAMES = dict(output="output (swap + lip-sync)", target="target video (no swap, no sync)",
                 ground_truth="exact ground truth (ceiling)")


def format_scores(case: Case, scores: dict) -> str:
  """The figures as the quickstart prints them, with a plain verdict against each baseline."""
  rows, out = scores["rows"], scores["rows"]["output"]
  lines = [f"{'':34s}{'identity top-1 = source':>25s}{'mouth corr. vs truth':>22s}"]
  for key, label in ROW_NAMES.items():
    lines.append(f"{label:34s}{rows[key]['id_top1']:25.2f}{rows[key]['mouth_corr']:22.2f}")
  lines.append(f"{'chance (random gallery face)':34s}{scores['chance_id_top1']:25.2f}")
  lines.append(f"{'source colours only (4x4 photo)':34s}{scores['colour_id_top1']:25.2f}")
  lines.append(f"{'target mouth track (exact) vs truth':34s}{'':25s}"
               f"{scores['target_track_corr']:22.2f}")
  best_id = max(rows["target"]["id_top1"], scores["chance_id_top1"], scores["colour_id_top1"])
  best_mouth = max(rows["target"]["mouth_corr"], scores["target_track_corr"])
  verdict = lambda beats: "BEATS" if beats else "does NOT beat"  # noqa: E731
  lines.append(f"identity: the output {verdict(out['id_top1'] > best_id)} the no-swap video, "
               f"chance and the source's colours alone ({out['id_top1']:.2f} vs "
               f"{best_id:.2f}); mouth: it "
               f"{verdict(out['mouth_corr'] > best_mouth)} the target's own mouth "
               f"({out['mouth_corr']:.2f} vs {best_mouth:.2f})")
  lines.append(f"({scores['frames']} frames of {case.source_identity}'s photo "
               f"({case.source_clip} frame 0) on {case.target_clip}, driven by "
               f"{case.audio_clip}'s audio; dlib gallery: {scores['gallery']} frames of the "
               f"held-out identities, {LIPS} lips)")
  return "\n".join(lines)


def strip_image(case: Case, outputs: dict, frames: int = 4) -> np.ndarray:
  """uint8 image: one row per frame (evenly spaced over the clip) of source photo | target |
  each output (name -> video path, in order) | ground truth, all at the case's resolution, under
  a header naming the columns."""
  import cv2  # pylint: disable=import-outside-toplevel
  from PIL import Image  # pylint: disable=import-outside-toplevel
  if frames < 1:
    raise UserError(f"--frames must be at least 1, got {frames}")
  size = case.resolution
  columns = {"source photo": None, "target": read_frames(case.path("target.mp4"))}
  for name, path in outputs.items():
    columns[name] = read_frames(path)
    if len(columns[name]) != case.num_frames:
      raise UserError(f"{path}: {len(columns[name])} frames, the case has {case.num_frames}")
  columns["ground truth"] = np.load(case.path("ground_truth.npz"))["frames"]
  photo = np.asarray(Image.open(case.path("source.png")).convert("RGB"))
  photo = resize_frames(photo[None], size)[0]
  picks = np.linspace(0, case.num_frames - 1, frames).round().astype(int)
  gap = 4
  width = len(columns) * (size + gap) - gap
  header = np.full((18, width, 3), 255, np.uint8)
  for i, name in enumerate(columns):
    cv2.putText(header, name[:size // 7], (i * (size + gap) + 2, 13), cv2.FONT_HERSHEY_SIMPLEX,
                0.38, (0, 0, 0), 1, cv2.LINE_AA)
  rows = [header]
  for t in picks:
    cells = [photo if video is None else resize_frames(video[t:t + 1], size)[0]
             for video in columns.values()]
    line = np.full((size, width, 3), 255, np.uint8)
    for i, cell in enumerate(cells):
      line[:, i * (size + gap):i * (size + gap) + size] = cell
    rows += [np.full((gap, width, 3), 255, np.uint8), line]
  return np.concatenate(rows, axis=0)


def _named_outputs(pairs: list) -> dict:
  outputs = {}
  for pair in pairs:
    name, sep, path = pair.partition("=")
    if not sep or not name or not path:
      raise UserError(f"--output {pair!r}: give NAME=VIDEO, e.g. long=outputs_long/demo/output.mp4")
    outputs[name] = path
  return outputs


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m data_prep.synthetic.demo",
                                   description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)
  w = sub.add_parser("write", help="write a demo case from a prepared synthetic set")
  w.add_argument("--data", required=True, help="the --out of `swaptalk prepare synthetic`")
  w.add_argument("--out", required=True, help="folder for the case's files")
  w.add_argument("--seed", type=int, default=0)
  w.add_argument("--resolution", type=int, default=128)
  s = sub.add_parser("score", help="score a generated video against the case's ground truth")
  s.add_argument("--case", required=True)
  s.add_argument("--output", required=True, help="the video `swaptalk generate` wrote")
  t = sub.add_parser("strip", help="a PNG of sampled frames: photo | target | outputs | truth")
  t.add_argument("--case", required=True)
  t.add_argument("--output", action="append", required=True, metavar="NAME=VIDEO",
                 help="a generated video of this case and its column name (repeatable)")
  t.add_argument("--out", required=True, help="the PNG to write")
  t.add_argument("--frames", type=int, default=4, help="rows: frames evenly spaced over the clip")
  args = parser.parse_args(argv)
  try:
    if args.command == "write":
      case = write_case(args.data, args.out, args.seed, args.resolution)
      print(f"demo case in {case.dir}: source {case.source_identity} ({case.source_clip} frame "
            f"0), target {case.target_clip}, driving audio {case.audio_clip}, {case.num_frames} "
            f"frames at {case.resolution} px")
    elif args.command == "strip":
      from PIL import Image  # pylint: disable=import-outside-toplevel
      image = strip_image(load_case(args.case), _named_outputs(args.output), args.frames)
      Image.fromarray(image).save(args.out)
      print(f"demo strip: {args.out} ({image.shape[1]}x{image.shape[0]} px)")
    else:
      print(format_scores(load_case(args.case), score_case(args.case, args.output)))
  except UserError as e:
    print(f"demo {args.command}: error: {e}", file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
