"""The quickstart's demo case (data_prep/synthetic/demo.py), without training: the case's files are
written and read back by generate's own readers, the exact ground truth scored as an output is
retrieved as the source identity with the mouth it was rendered with, the target video (no swap)
is not, and bad input fails in one line."""
import json

import numpy as np
import pytest

from data_prep.synthetic import demo
from swaptalk_jax.errors import MissingFileError, UserError


@pytest.fixture(scope="module")
def case(tmp_path_factory):
  """A 1 s case from a small prepared set: 3 held-out identities x 2 clips (A, B and C distinct)."""
  from data_prep.synthetic.prepare import prepare_synthetic
  data = tmp_path_factory.mktemp("demo_data")
  prepare_synthetic(data, identities=5, clips_per_identity=2, seconds=1.0, resolution=64, seed=0,
                    test_identities=3)
  return demo.write_case(str(data), str(tmp_path_factory.mktemp("case")), seed=0)


def test_case_files_are_written_and_readable(case):
  from swaptalk_jax.inference import media
  from swaptalk_jax.video import decode
  photo = media.read_photo(case.path("source.png"))
  assert photo.shape == (128, 128, 3)
  info = decode.probe(case.path("target.mp4"))
  assert info.has_audio and (info.width, info.height) == (128, 128)
  assert len(demo.read_frames(case.path("target.mp4"))) == case.num_frames == 25
  audio = media.read_audio(case.path("audio.wav"))
  assert abs(audio.size - 25 * 640) <= 1 and np.abs(audio).max() > 0.05
  truth = np.load(case.path("ground_truth.npz"))
  assert truth["frames"].shape == (25, 128, 128, 3) and truth["landmarks"].shape == (25, 68, 2)
  # Three distinct held-out clips: A's photo, B's target, C's audio (C a third identity here).
  names = {case.source_clip[:8], case.target_clip[:8], case.audio_clip[:8]}
  assert len(names) == 3 and case.source_identity == case.source_clip[:8]
  assert json.loads(open(case.path("case.json")).read())["target_clip"] == case.target_clip
  # The ground truth is A's face on B's motion: not the target's pixels, same head pose.
  target = demo.read_frames(case.path("target.mp4"))
  assert np.abs(truth["frames"].astype(np.int16) - target).mean() > 5
  # Same seed, same case; the mouth driving the truth is C's, not B's.
  assert not np.allclose(truth["driving_openness"], truth["target_openness"])


def test_ground_truth_scores_as_the_ceiling_and_the_target_lower(case, tmp_path):
  from swaptalk_jax.video.write import write_video
  truth = np.load(case.path("ground_truth.npz"))["frames"]
  as_output = write_video(str(tmp_path / "truth.mp4"), truth, fps=25, crf=12, preset="ultrafast")
  scores = demo.score_case(case.dir, as_output)
  rows = scores["rows"]
  print(demo.format_scores(case, scores))
  assert rows["output"]["id_top1"] == 1.0 and rows["ground_truth"]["id_top1"] == 1.0
  assert rows["output"]["mouth_corr"] > 0.9 and rows["ground_truth"]["mouth_corr"] == 1.0
  assert rows["target"]["id_top1"] < 0.5
  assert 0 < scores["chance_id_top1"] < 0.5
  assert scores["colour_id_top1"] in (0.0, 1.0)    # one still photo: found or not
  # The identity verdict weighs the output against the best of the three identity baselines.
  for colour, verdict in ((0.0, "BEATS"), (1.0, "does NOT beat")):
    text = demo.format_scores(case, {**scores, "colour_id_top1": colour})
    assert f"identity: the output {verdict} the no-swap video, chance and the source's colours" \
        in text and f"{'source colours only (4x4 photo)':34s}{colour:25.2f}" in text


def test_bad_input_is_one_line(tmp_path, case, capsys):
  with pytest.raises(MissingFileError, match="does not exist"):
    demo.write_case(str(tmp_path / "missing"), str(tmp_path / "out"))
  args = ["write", "--data", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
  assert demo.main(args) == 1
  err = capsys.readouterr().err
  assert err.count("\n") == 1 and "missing does not exist" in err
  with pytest.raises(MissingFileError, match="nothing.mp4 does not exist"):
    demo.score_case(case.dir, str(tmp_path / "nothing.mp4"))
  with pytest.raises(MissingFileError, match="case.json does not exist"):
    demo.load_case(str(tmp_path))
  (tmp_path / "not_synthetic").mkdir()
  (tmp_path / "not_synthetic" / "metadata.json").write_text('{"params": {}}')
  with pytest.raises(UserError, match="not a synthetic set"):
    demo.write_case(str(tmp_path / "not_synthetic"), str(tmp_path / "out"))


def test_strip_puts_each_column_where_its_header_says(case, tmp_path, capsys):
  """photo | target | outputs | truth, one row per sampled frame: the truth written as an output
  fills its column with the truth's own frames, the target column is the target's."""
  from swaptalk_jax.video.write import write_video
  truth = np.load(case.path("ground_truth.npz"))["frames"]
  as_output = write_video(str(tmp_path / "truth.mp4"), truth, fps=25, crf=12, preset="ultrafast")
  image = demo.strip_image(case, {"truth again": as_output}, frames=3)
  size, gap, header = case.resolution, 4, 18
  assert image.shape == (header + 3 * (gap + size), 4 * (size + gap) - gap, 3)

  def cell(row, column):
    top, left = header + gap + row * (size + gap), column * (size + gap)
    return image[top:top + size, left:left + size].astype(np.int16)
  last = case.num_frames - 1
  target = demo.read_frames(case.path("target.mp4"))
  assert np.abs(cell(2, 1) - target[last]).mean() < 1                  # target, last frame
  assert np.abs(cell(2, 2) - truth[last]).mean() < 4                   # the re-encoded truth
  assert np.array_equal(cell(2, 3), truth[last])                       # the truth itself
  assert np.array_equal(cell(0, 0), cell(2, 0))                        # the photo on every row
  assert np.abs(cell(0, 3) - truth[0]).max() == 0 and image[:header].min() < 128   # labels drawn
  out = tmp_path / "strip.png"
  assert demo.main(["strip", "--case", case.dir, "--output", f"t={as_output}",
                    "--out", str(out)]) == 0 and out.is_file()
  assert demo.main(["strip", "--case", case.dir, "--output", as_output, "--out", str(out)]) == 1
  assert "give NAME=VIDEO" in capsys.readouterr().err
