"""Stage 2 pieces without training: the expert's shapes and logical names, the scaled-cosine score,
the frozen expert as a loss (gradient only into the token embeddings, params a jit argument), the
lower-half encoding against HalfSplitVQGAN.encode, AV-offset detection with an oracle scorer
(sign convention, delayed tracks), the offset plot, and one-line config errors."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import lip_expert as lip_expert_config
from swaptalk_jax.audio.mel import log_mel
from swaptalk_jax.errors import UserError
from swaptalk_jax.losses import sync
from swaptalk_jax.metrics import av_offset
from swaptalk_jax.models.lip_expert import LipExpert, lip_expert_from_config
from swaptalk_jax.models.vqgan import HalfSplitVQGAN
from swaptalk_jax.trainers import lip_expert as trainer_lib

MICRO_VQGAN = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=8, embed_dim=8,
                   num_codes=16, num_groups=4)


def _expert(**kw):
  return lip_expert_from_config(lip_expert_config.get_config("micro").model).clone(**kw)


def _inputs(b=3, d=8, seed=0):
  k1, k2 = jax.random.split(jax.random.key(seed))
  return (jax.random.normal(k1, (b, 5, 8, 16, d)),
          jax.random.uniform(k2, (b, 16, 80), minval=-4.0, maxval=4.0))


def test_shapes_logical_names_and_unit_embeddings():
  expert = _expert()
  tokens, mel = _inputs()
  variables = jax.jit(expert.init)(jax.random.key(0), tokens, mel)
  for path, leaf in jax.tree_util.tree_leaves_with_path(
      variables, is_leaf=lambda x: isinstance(x, nn.Partitioned)):
    assert isinstance(leaf, nn.Partitioned), f"{path} has no logical axis names"
    assert len(leaf.names) == leaf.value.ndim, path
  params = nn.unbox(variables)["params"]
  logits = expert.apply({"params": params}, tokens, mel)
  assert logits.shape == (3,)
  v = expert.apply({"params": params}, tokens, method=LipExpert.embed_visual)
  a = expert.apply({"params": params}, mel, method=LipExpert.embed_audio)
  np.testing.assert_allclose(np.linalg.norm(v, axis=-1), 1.0, atol=1e-5)
  np.testing.assert_allclose(np.linalg.norm(a, axis=-1), 1.0, atol=1e-5)
  # logit = exp(log_scale) * cos + bias, at init scale = config init_scale and bias 0.
  np.testing.assert_allclose(logits, expert.init_scale * np.sum(v * a, -1), rtol=1e-5, atol=1e-5)


def test_window_centring_sees_motion_not_the_static_face():
  """center_window: a still window carries no sync evidence, whoever's face it is (two different
  static windows embed alike); without centring they differ; moving windows differ either way."""
  tokens, mel = _inputs(b=2)
  tokens = jnp.round(tokens * 64) / 64   # dyadic values: the window mean of a still token is exact
  still = jnp.repeat(tokens[:, :1], 5, axis=1)          # two different faces, frozen in time
  for center in (True, False):
    expert = _expert(center_window=center, token_norm=False)
    params = nn.unbox(expert.init(jax.random.key(2), tokens, mel))["params"]
    embed = lambda x, e=expert, p=params: np.asarray(e.apply({"params": p}, x,
                                                            method=LipExpert.embed_visual))
    v_still, v_moving = embed(still), embed(tokens)
    assert (np.abs(v_still[0] - v_still[1]).max() < 1e-5) == center
    assert np.abs(v_moving[0] - v_moving[1]).max() > 1e-3
  assert lip_expert_config.get_config("micro").model.center_window


def test_wav2lip_score_is_cosine_probability():
  expert = _expert(score="wav2lip")
  tokens, mel = _inputs()
  params = nn.unbox(expert.init(jax.random.key(1), tokens, mel))["params"]
  cos = expert.apply({"params": params}, tokens, mel, method=LipExpert.cosine)
  prob = jax.nn.sigmoid(expert.apply({"params": params}, tokens, mel))
  assert np.all(np.asarray(cos) >= 0)              # ReLU'd embeddings
  np.testing.assert_allclose(prob, np.clip(cos, 1e-6, 1 - 1e-6), atol=1e-4)


def test_bad_inputs_and_options():
  expert = _expert()
  tokens, mel = _inputs()
  with pytest.raises(ValueError, match=r"\[B, T, h, w, D\]"):
    expert.init(jax.random.key(0), tokens[:, 0], mel)
  with pytest.raises(ValueError, match="stream_norm"):
    _expert(stream_norm="batch").init(jax.random.key(0), tokens, mel)
  with pytest.raises(UserError, match="unknown variant"):
    lip_expert_config.get_config("huge")


def test_sync_loss_trains_embeddings_not_the_frozen_expert():
  expert = _expert()
  tokens, mel = _inputs()
  params = nn.unbox(expert.init(jax.random.key(0), tokens, mel))["params"]
  loss_fn = jax.jit(lambda p, t, m: sync.sync_loss(expert, p, t, m))
  g_params, g_tokens = jax.grad(loss_fn, argnums=(0, 1))(params, tokens, mel)
  assert all(float(jnp.abs(g).max()) == 0 for g in jax.tree.leaves(g_params))
  assert float(jnp.abs(g_tokens).max()) > 0
  # L_sync = BCE against "in sync" = -log sync_score.
  score = sync.sync_score(expert, params, tokens, mel)
  np.testing.assert_allclose(loss_fn(params, tokens, mel), -np.mean(np.log(score)), rtol=1e-5)
  # The params are an argument of the program, not constants baked into it.
  hlo = jax.jit(lambda p, t, m: sync.sync_loss(expert, p, t, m)).lower(params, tokens, mel)
  n_args = len(jax.tree.leaves(params)) + 2
  assert len(jax.tree.leaves(hlo.compile().input_shardings[0])) == n_args


def test_bce_with_logits_matches_reference():
  logits = jnp.array([-30.0, -2.0, 0.0, 3.0, 40.0])
  labels = jnp.array([0.0, 1.0, 1.0, 0.0, 1.0])
  p = 1 / (1 + np.exp(-np.asarray(logits, np.float64)))
  ref = -(labels * np.log(np.maximum(p, 1e-300)) + (1 - labels) * np.log(np.maximum(1 - p, 1e-300)))
  np.testing.assert_allclose(sync.bce_with_logits(logits, labels), ref, rtol=1e-5, atol=1e-6)


def test_lower_embeddings_equal_the_vqgans_lower_half():
  model = HalfSplitVQGAN(**MICRO_VQGAN)
  frames = jax.random.uniform(jax.random.key(3), (2, 5, 32, 32, 3), minval=-1, maxval=1)
  params = nn.unbox(model.init(jax.random.key(0), frames[:, 0]))["params"]
  got = jax.jit(lambda p, f: trainer_lib.lower_embeddings(model, p, f))(params, frames)
  _, lower = model.apply({"params": params}, frames.reshape(10, 32, 32, 3),
                         method=HalfSplitVQGAN.encode)
  assert got.shape == (2, 5, 8, 16, 8)
  np.testing.assert_allclose(got.reshape(10, 8, 16, 8), lower.quantized, atol=1e-5)


# ----------------------------------------------------------------------------- offset detection
def _oracle_clip(num_frames=75, seed=0) -> av_offset.ClipAV:
  """A clip whose frame brightness follows its audio's per-frame loudness (noise of a random level
  per frame)."""
  rng = np.random.default_rng(seed)
  loud = rng.random(num_frames).astype(np.float32)
  audio = np.repeat(loud, av_offset.SAMPLES_PER_FRAME) * rng.standard_normal(
      num_frames * av_offset.SAMPLES_PER_FRAME).astype(np.float32) * 0.3
  frames = np.broadcast_to(loud[:, None, None, None] * 2 - 1, (num_frames, 4, 4, 3)).copy()
  return av_offset.ClipAV("c0", "id0", frames, audio)


def _oracle_score(frames, mels):
  """Correlation of the window's frame brightness with its audio windows' per-frame loudness."""
  bright = frames.mean(axis=(2, 3, 4))                                  # [W, 5]
  steps = np.array([0, 3, 6, 9, 12])
  loud = np.stack([mels[:, :, s:s + 3].mean(axis=(2, 3)) for s in steps], -1)   # [W, O, 5]
  b = bright - bright.mean(-1, keepdims=True)
  a = loud - loud.mean(-1, keepdims=True)
  return np.sum(b[:, None] * a, -1) / (np.linalg.norm(b, axis=-1)[:, None]
                                       * np.linalg.norm(a, axis=-1) + 1e-6)


@pytest.mark.parametrize("delay", [0, 5, -5, 3])
def test_offset_detection_finds_the_delay_with_its_sign(delay):
  clips = [_oracle_clip(seed=s).delayed(delay) for s in range(2)]
  result = av_offset.detect_offsets(_oracle_score, clips, max_offset=15, margin=abs(delay))
  summary = result.summary(expected=delay)
  assert summary["clip_offset_acc"] == 1.0
  # 5-sample correlations are noisy per window (31 candidates: chance 0.03); the clip's mean
  # curve is exact.
  assert summary["offset_acc"] > 0.15, summary
  assert list(result.offsets) == list(range(-15, 16))


def test_offset_windows_stay_inside_the_clip_and_match_log_mel():
  clip = _oracle_clip()
  starts, frames, mels = av_offset.offset_windows(clip, max_offset=15, stride=5)
  assert starts[0] == 15 and starts[-1] <= 75 - 5 - 15
  assert frames.shape == (len(starts), 5, 4, 4, 3) and mels.shape == (len(starts), 31, 16, 80)
  mel = log_mel(clip.audio)
  t = starts[1]   # offset 0 of window 1 starts at frame t: mel step floor(3.2 t)
  np.testing.assert_array_equal(mels[1, 15], mel[(t * 16) // 5:(t * 16) // 5 + 16])
  with pytest.raises(ValueError, match="too few"):
    av_offset.offset_windows(av_offset.ClipAV("s", "i", clip.frames[:30], clip.audio[:30 * 640]),
                             max_offset=15)


def test_offset_plot_marks_the_peak():
  img = av_offset.plot_curve(np.arange(-15, 16), np.exp(-np.arange(-15, 16) ** 2 / 8.0)[None])
  assert img.shape == (96, 248, 3) and img.dtype == np.float32
  assert 0.0 <= img.min() and img.max() <= 1.0
  blue = np.argwhere((img[..., 2] > 0.8) & (img[..., 0] < 0.2))
  assert abs(np.median(blue[blue[:, 0] < 10][:, 1]) - 124) <= 3   # the top of the curve at 0


# ----------------------------------------------------------------------------- config errors
def test_config_errors_are_one_line(tmp_path):
  c = lip_expert_config.get_config("micro")
  with pytest.raises(UserError, match="vqgan.workdir is not set"):
    trainer_lib.make_task(c)
  c.vqgan.workdir = str(tmp_path / "nowhere")
  with pytest.raises(UserError, match="nowhere"):
    trainer_lib.make_task(c)


def test_paper_size_parameter_count():
  """configs/lip_expert.py:paper over the f16 VQGAN's 8x16 lower grid of 256-d codes (shapes only:
  nothing is compiled)."""
  expert = lip_expert_from_config(lip_expert_config.get_config("paper").model)
  tokens = jax.ShapeDtypeStruct((2, 5, 8, 16, 256), jnp.float32)
  mel = jax.ShapeDtypeStruct((2, 16, 80), jnp.float32)
  shapes = jax.eval_shape(expert.init, jax.random.key(0), tokens, mel)
  count = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nn.unbox(shapes)))
  assert 10e6 < count < 15e6, count   # 12.76 M
