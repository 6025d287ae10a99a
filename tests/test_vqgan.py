"""Half-split VQGAN pieces: shapes, half independence, quantiser, usage metrics, GAN losses, SSIM,
and one jitted `loss` call per group of the stage-0 Task."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import vqgan as vqgan_config
from swaptalk_jax.losses import gan as gan_losses
from swaptalk_jax.losses import vq as vq_losses
from swaptalk_jax.models.conv_ops import conv2d
from swaptalk_jax.models.patchgan import PatchGANDiscriminator
from swaptalk_jax.core.task import FROZEN, STATS
from swaptalk_jax.models.quantizer import VectorQuantizer, restart_dead_codes
from swaptalk_jax.models.vqgan import HalfSplitVQGAN, vqgan_from_config
from swaptalk_jax.trainers import vqgan as vqgan_trainer

# A very small model so compiling stays cheap: 32x32 faces, f2 -> 16x16 tokens (8 rows per half).
MICRO = dict(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=8, embed_dim=8, num_codes=16,
             num_groups=4)


def _init_key(seed=0):
  """RBG keys compile parameter initialisers ~3x faster than threefry on XLA:CPU."""
  return jax.random.key(seed, impl="rbg")


def _images(key, b=2, s=32):
  return jax.random.uniform(jax.random.key(key), (b, s, s, 3), minval=-1.0, maxval=1.0)


@pytest.fixture(scope="module")
def micro_model():
  model = HalfSplitVQGAN(**MICRO)
  params = nn.unbox(jax.jit(model.init)(_init_key(), _images(0, b=1)))["params"]
  return model, params


@pytest.mark.parametrize("variant,grid", [("f16", 16), ("f8", 32)])
def test_paper_size_shapes(variant, grid):
  """Paper-size models (256 px): the token grid, the per-half split and the reconstruction."""
  cfg = vqgan_config.get_config(variant)
  model = vqgan_from_config(cfg.model)
  images = jax.ShapeDtypeStruct((2, 256, 256, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), images)
  indices = jax.eval_shape(lambda v, x: model.apply(v, x, method=HalfSplitVQGAN.encode_to_indices),
                           variables, images)
  assert indices.shape == (2, grid, grid) and indices.dtype == jnp.int32
  recon, (upper, lower) = jax.eval_shape(model.apply, variables, images)
  assert recon.shape == (2, 256, 256, 3)
  assert upper.quantized.shape == lower.quantized.shape == (2, grid // 2, grid, 256)
  codebooks = nn.unbox(variables)["params"]
  assert codebooks["quantizer_upper"]["codebook"].shape == (1024, 256)
  assert codebooks["quantizer_lower"]["codebook"].shape == (1024, 256)


def _traced(cfg, size: int):
  """(model, image spec, variables, (recon, (upper, lower))) of a config's VQGAN on 2 images of
  size x size, traced with eval_shape (nothing compiled)."""
  model = vqgan_from_config(cfg.model)
  images = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
  variables = jax.eval_shape(model.init, jax.random.key(0), images)
  return model, images, variables, jax.eval_shape(model.apply, variables, images)


def test_micro_f4_keeps_the_paper_grid_at_64_px():
  """configs/vqgan.py:micro_f4 (the CPU chain's 64 px VQGAN): f4 -> the paper's 16x16 token grid,
  8 rows per half, and indices -> embeddings -> decode comes back to 64 px images. Shapes only
  (traced, not compiled: fast); the numeric round trip is the micro test above, same code path."""
  cfg = vqgan_config.get_config("micro_f4")
  assert cfg.data.image_size == 64 and "micro_f4" in vqgan_config.CPU_VARIANTS
  model, images, variables, (recon, (upper, lower)) = _traced(cfg, 64)
  assert model.downsample_factor == 4
  assert recon.shape == (2, 64, 64, 3)
  assert upper.quantized.shape == lower.quantized.shape == (2, 8, 16, cfg.model.embed_dim)
  method = lambda m: (lambda v, x: model.apply(v, x, method=m))
  indices = jax.eval_shape(method(HalfSplitVQGAN.encode_to_indices), variables, images)
  assert indices.shape == (2, 16, 16) and indices.dtype == jnp.int32
  tokens = jax.eval_shape(method(HalfSplitVQGAN.indices_to_embeddings), variables, indices)
  assert tokens.shape == (2, 16, 16, cfg.model.embed_dim)
  assert jax.eval_shape(method(HalfSplitVQGAN.decode), variables, tokens).shape == (2, 64, 64, 3)
  with pytest.raises(ValueError, match="multiples of the downsample factor"):
    jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((1, 66, 66, 3), jnp.float32))


def test_every_param_has_logical_names():
  cfg = vqgan_config.get_config("tiny")
  task = vqgan_trainer.make_task(cfg)
  params = jax.eval_shape(task.init_params, jax.random.key(0),
                          {"image": jax.ShapeDtypeStruct((1, 64, 64, 3), jnp.float32)})
  leaves = jax.tree.leaves(params, is_leaf=lambda x: isinstance(x, nn.LogicallyPartitioned))
  assert leaves and all(isinstance(x, nn.LogicallyPartitioned) for x in leaves)


def test_halves_are_encoded_independently(micro_model):
  """Perturbing the lower half leaves every upper token (and latent) unchanged, and vice versa."""
  model, params = micro_model
  images = _images(1)
  lower_changed = images.at[:, 16:].set(_images(2)[:, 16:])
  upper_changed = images.at[:, :16].set(_images(3)[:, :16])
  encode = jax.jit(lambda x: model.apply({"params": params}, x, method=HalfSplitVQGAN.encode))
  (u0, l0), (u1, l1), (u2, l2) = encode(images), encode(lower_changed), encode(upper_changed)
  np.testing.assert_array_equal(u0.inputs, u1.inputs)
  np.testing.assert_array_equal(u0.indices, u1.indices)
  assert not np.allclose(l0.inputs, l1.inputs)
  np.testing.assert_array_equal(l0.inputs, l2.inputs)
  np.testing.assert_array_equal(l0.indices, l2.indices)
  assert not np.allclose(u0.inputs, u2.inputs)


def test_indices_round_trip_to_embeddings_and_decode(micro_model):
  model, params = micro_model
  images = _images(4)
  apply = lambda method, *a: jax.jit(
      lambda *a: model.apply({"params": params}, *a, method=method))(*a)
  recon, (upper, lower) = jax.jit(lambda x: model.apply({"params": params}, x))(images)
  indices = apply(HalfSplitVQGAN.encode_to_indices, images)
  assert indices.shape == (2, 16, 16)
  np.testing.assert_array_equal(indices[:, :8], upper.indices)
  np.testing.assert_array_equal(indices[:, 8:], lower.indices)
  tokens = apply(HalfSplitVQGAN.indices_to_embeddings, indices)
  np.testing.assert_allclose(tokens, jnp.concatenate([upper.codes, lower.codes], 1), atol=1e-6)
  # the upper rows come from C^U, the lower from C^B
  np.testing.assert_allclose(tokens[:, :8], params["quantizer_upper"]["codebook"][indices[:, :8]])
  np.testing.assert_allclose(tokens[:, 8:], params["quantizer_lower"]["codebook"][indices[:, 8:]])
  np.testing.assert_allclose(apply(HalfSplitVQGAN.decode, tokens), recon, atol=1e-5)


def test_bad_image_shape_is_a_clear_error(micro_model):
  model, params = micro_model
  with pytest.raises(ValueError, match="multiples of the downsample factor"):
    jax.eval_shape(lambda x: model.apply({"params": params}, x), _images(0, s=34))


@pytest.mark.parametrize("l2", [False, True])
def test_quantizer_nearest_code_and_straight_through(l2):
  vq = VectorQuantizer(num_codes=6, code_dim=3, l2_normalize=l2)
  x = jax.random.normal(jax.random.key(0), (2, 5, 3))
  params = {"codebook": jax.random.normal(jax.random.key(2), (6, 3))}
  q = vq.apply({"params": params}, x)
  table = np.asarray(params["codebook"], np.float64)
  xs = np.asarray(x, np.float64)
  if l2:
    table /= np.linalg.norm(table, axis=-1, keepdims=True)
    xs /= np.linalg.norm(xs, axis=-1, keepdims=True)
    np.testing.assert_allclose(np.linalg.norm(q.codes, axis=-1), 1.0, atol=1e-5)
  expected = np.argmin(((xs[..., None, :] - table) ** 2).sum(-1), axis=-1)
  np.testing.assert_array_equal(q.indices, expected)
  np.testing.assert_allclose(q.quantized, table[expected], atol=1e-5)

  # straight-through: d(sum(w * quantized))/dx == d(sum(w * normalised x))/dx
  w = jax.random.normal(jax.random.key(3), x.shape)
  grad_st = jax.grad(lambda x: jnp.sum(w * vq.apply({"params": params}, x).quantized))(x)
  grad_id = jax.grad(lambda x: jnp.sum(w * vq.apply({"params": params}, x).inputs))(x)
  np.testing.assert_allclose(grad_st, grad_id, atol=1e-6)
  if not l2:
    np.testing.assert_allclose(grad_st, w, atol=1e-6)


def test_vq_losses_route_gradients():
  """Codebook loss moves only the codes, commitment only the encoder outputs."""
  vq = VectorQuantizer(num_codes=4, code_dim=2)
  x = jax.random.normal(jax.random.key(0), (8, 2))
  params = {"codebook": jax.random.normal(jax.random.key(1), (4, 2))}

  def grads(loss_fn):
    return jax.grad(lambda p, x: loss_fn(vq.apply({"params": p}, x)), argnums=(0, 1))(params, x)

  g_cb_params, g_cb_x = grads(vq_losses.codebook_loss)
  g_cm_params, g_cm_x = grads(vq_losses.commitment_loss)
  assert np.abs(g_cb_params["codebook"]).sum() > 0 and np.abs(g_cb_x).sum() == 0
  assert np.abs(g_cm_params["codebook"]).sum() == 0 and np.abs(g_cm_x).sum() > 0
  q = vq.apply({"params": params}, x)
  expected = np.mean((np.asarray(x) - np.asarray(q.codes)) ** 2)
  np.testing.assert_allclose(vq_losses.vq_loss(q, 0.25), 1.25 * expected, rtol=1e-5)


def test_usage_metrics():
  indices = jnp.array([0, 1, 2, 3] * 4)           # 4 of 8 codes, uniformly
  m = vq_losses.usage_metrics(vq_losses.code_histogram(indices, 8))
  np.testing.assert_allclose(m["perplexity"], 4.0, rtol=1e-5)
  np.testing.assert_allclose(m["unused_in_batch"], 0.5)
  collapsed = jnp.zeros((10,), jnp.int32)                       # all tokens on one code
  m = vq_losses.usage_metrics(vq_losses.code_histogram(collapsed, 8))
  np.testing.assert_allclose(m["perplexity"], 1.0, rtol=1e-5)
  np.testing.assert_allclose(m["unused_in_batch"], 7 / 8)


def test_entropy_loss_prefers_spread_usage():
  """Tokens confidently spread over all codes score lower than all tokens on one code."""
  from swaptalk_jax.models.quantizer import Quantized
  def q_of(distances):
    z = jnp.zeros(distances.shape[:-1] + (1,))
    return Quantized(z, z, z, jnp.argmin(distances, -1), distances)
  spread = jnp.where(jnp.eye(4, dtype=bool), 0.0, 10.0)
  collapsed = jnp.tile(jnp.array([[0.0, 10.0, 10.0, 10.0]]), (4, 1))
  assert vq_losses.entropy_loss(q_of(spread)) < vq_losses.entropy_loss(q_of(collapsed)) - 1.0


def test_hinge_losses():
  real, fake = jnp.array([2.0, 0.5]), jnp.array([-2.0, 0.0])
  np.testing.assert_allclose(gan_losses.hinge_discriminator_loss(real, fake), 0.5 * (0.25 + 0.5))
  np.testing.assert_allclose(gan_losses.hinge_generator_loss(fake), 1.0)


def test_paired_accuracy_reads_chance_for_a_collapsed_discriminator():
  """An input-independent D (same logit for a real image and its reconstruction) scores 0.5 on
  the noise of its own output, whatever its offset; one that separates them scores 1."""
  noise = 1e-4 * jax.random.normal(jax.random.key(0), (2, 2, 8, 8, 1))
  collapsed = gan_losses.paired_accuracy(0.3 + noise[0], 0.3 + noise[1])
  assert 0.35 < float(collapsed) < 0.65
  np.testing.assert_allclose(gan_losses.paired_accuracy(noise[0] + 0.2, noise[1] - 0.2), 1.0)
  np.testing.assert_allclose(gan_losses.paired_accuracy(noise[0] - 0.2, noise[1] + 0.2), 0.0)


def test_last_layer_grad_norm_equals_full_gradient():
  """The vjp-on-the-last-layer norm equals |d loss / d W| through the whole last conv."""
  k = jax.random.split(jax.random.key(0), 4)
  features = jax.random.normal(k[0], (2, 8, 8, 5))
  kernel = jax.random.normal(k[1], (3, 3, 5, 3)) * 0.1
  bias = jax.random.normal(k[2], (3,))
  target = jax.random.normal(k[3], (2, 8, 8, 3))
  loss_fn = lambda y: jnp.mean(jnp.abs(y - target)) + jnp.mean(y ** 2)
  full = jax.grad(lambda w: loss_fn(conv2d(features, w) + bias))(kernel)
  output = conv2d(features, kernel) + bias
  norm = gan_losses.last_layer_grad_norm(loss_fn, output, lambda w: conv2d(features, w), kernel)
  np.testing.assert_allclose(norm, np.linalg.norm(np.asarray(full)), rtol=1e-5)
  w = gan_losses.adaptive_weight(jnp.array(2.0), jnp.array(0.5), max_weight=10.0)
  np.testing.assert_allclose(w, 2.0 / (0.5 + 1e-4), rtol=1e-6)
  np.testing.assert_allclose(gan_losses.adaptive_weight(jnp.array(2.0), jnp.array(0.0), 3.0), 3.0)


def test_patchgan_shape():
  disc = PatchGANDiscriminator(base_features=8, num_layers=3, num_groups=4)
  x = _images(0, s=64)
  out, _ = jax.eval_shape(lambda x: disc.init_with_output(jax.random.key(0), x), x)
  assert out.shape == (2, 6, 6, 1)   # taming's NLayerDiscriminator at 64 px: 64/8 - 2


def test_ssim_matches_skimage():
  skimage_metrics = pytest.importorskip("skimage.metrics")
  rng = np.random.default_rng(0)
  x = rng.uniform(0, 1, (2, 40, 36, 3)).astype(np.float32)
  smooth = np.cumsum(np.cumsum(rng.normal(size=(2, 40, 36, 3)), 1), 2)
  y = np.clip(0.7 * x + 0.3 * (smooth - smooth.min()) / np.ptp(smooth), 0, 1).astype(np.float32)
  ours = np.asarray(vqgan_trainer.ssim(jnp.asarray(x), jnp.asarray(y)))
  ref = [skimage_metrics.structural_similarity(
      x[i].astype(np.float64), y[i].astype(np.float64), gaussian_weights=True, sigma=1.5,
      use_sample_covariance=False, data_range=1.0, channel_axis=-1) for i in range(2)]
  np.testing.assert_allclose(ours, ref, atol=2e-5)
  np.testing.assert_allclose(vqgan_trainer.ssim(jnp.asarray(x), jnp.asarray(x)), 1.0, atol=1e-5)
  np.testing.assert_allclose(
      vqgan_trainer.psnr(jnp.zeros((1, 4, 4, 3)), jnp.full((1, 4, 4, 3), 0.1)), 20.0, rtol=1e-5)


def test_config_variants_and_pretrained_errors():
  for variant in vqgan_config.VARIANTS:
    cfg = vqgan_config.get_config(variant)
    assert cfg.stage == "vqgan"
  with pytest.raises(ValueError, match="unknown variant"):
    vqgan_config.get_config("f32")
  tiny = vqgan_config.get_config("tiny")
  assert tiny.loss.lpips_weight == 0 and tiny.loss.identity_weight == 0   # explicitly OFF
  f16 = vqgan_config.get_config("f16")
  with pytest.raises(ValueError, match="config.pretrained.lpips_path is not set"):
    vqgan_trainer.make_task(f16)
  f16.loss.lpips_weight = 0.0
  with pytest.raises(ValueError, match="needs config.identity.arcface_path"):
    vqgan_trainer.make_task(f16)
  f16.identity.arcface_path = "/nonexistent/arcface_r50.safetensors"
  with pytest.raises(Exception, match="arcface_r50"):
    vqgan_trainer.make_task(f16)


def _micro_config(disc_start=1):
  cfg = vqgan_config.get_config("tiny")
  cfg.model.update(MICRO)
  cfg.discriminator.update(base_features=8, num_layers=2, num_groups=4)
  cfg.loss.disc_start = disc_start
  return cfg


def test_one_loss_call_per_group_under_jit():
  """Generator then discriminator (with the generator's carry), before and after disc_start."""
  task = vqgan_trainer.make_task(_micro_config(disc_start=1))
  batch = {"image": _images(5)}
  params = nn.unbox(jax.jit(task.init_params)(_init_key(), batch))

  @jax.jit
  def both(params, step):
    gen = lambda g: task.loss("generator", {**params, "generator": g}, batch, None, step, None)
    (g_loss, (g_metrics, carry)), g_grads = jax.value_and_grad(gen, has_aux=True)(
        params["generator"])
    disc = lambda d: task.loss("discriminator", {**params, "discriminator": d}, batch, None, step,
                               carry)
    (d_loss, (d_metrics, _)), d_grads = jax.value_and_grad(disc, has_aux=True)(
        params["discriminator"])
    return g_loss, g_metrics, g_grads, d_loss, d_metrics, d_grads

  before = both(params, jnp.int32(0))
  after = both(params, jnp.int32(1))
  for g_loss, g_metrics, g_grads, d_loss, d_metrics, d_grads in (before, after):
    assert np.isfinite(g_loss) and np.isfinite(d_loss)
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves((g_grads, d_grads)))
    for key in ("l1", "perplexity_upper", "unused_in_batch_lower", "codebook_upper", "g_loss",
                "adaptive_weight"):
      assert key in g_metrics
    assert 0.0 <= d_metrics["paired_accuracy"] <= 1.0
  # before disc_start: no GAN term, no discriminator loss or gradient
  assert before[1]["adaptive_weight"] == 0 and before[3] == 0
  assert all(np.all(x == 0) for x in jax.tree.leaves(before[5]))
  # after: the adaptive-weighted GAN term enters and the discriminator learns
  assert after[1]["adaptive_weight"] > 0 and after[3] > 0
  assert sum(float(np.abs(x).sum()) for x in jax.tree.leaves(after[5])) > 0
  np.testing.assert_allclose(after[0] - before[0],
                             0.8 * after[1]["adaptive_weight"] * after[1]["g_loss"], rtol=1e-4)
  assert task.is_active("discriminator", jnp.int32(0)) == False  # noqa: E712
  assert task.is_active("discriminator", jnp.int32(1)) == True  # noqa: E712


def test_eval_metrics_and_summaries():
  task = vqgan_trainer.make_task(_micro_config())
  batch = {"image": _images(6, b=3)}
  params = nn.unbox(jax.jit(task.init_params)(_init_key(), batch))
  metrics = jax.jit(task.eval_metrics)(params, batch, jax.random.key(1))
  for key in ("l1", "psnr", "ssim", "perplexity_upper", "perplexity_lower", "unused_in_batch_upper"):
    assert np.isfinite(metrics[key]), key
  images = jax.jit(task.summaries)(params, batch)["reconstruction"]
  assert images.shape == (3, 32, 96, 3)
  assert 0.0 <= float(images.min()) and float(images.max()) <= 1.0


def test_restart_dead_codes_replaces_only_dead_rows_with_candidates():
  codebook = jnp.arange(12.0).reshape(6, 2)
  dead = jnp.array([False, True, False, True, True, False])
  candidates = 100.0 + jnp.arange(20.0).reshape(10, 2)
  out = np.asarray(restart_dead_codes(codebook, dead, candidates, jax.random.key(0)))
  np.testing.assert_array_equal(out[~np.asarray(dead)], np.asarray(codebook)[~np.asarray(dead)])
  restarted = out[np.asarray(dead)]
  for row in restarted:   # each restarted row is one of the candidates, all different (N >= K)
    assert any(np.array_equal(row, c) for c in np.asarray(candidates))
  assert len({tuple(r) for r in restarted}) == len(restarted)


def test_task_state_tracks_usage_and_restarts_dead_codes_to_encoder_outputs():
  """Codes 0-3 are used every step, the rest never: after enough steps those are dead, and at the
  next restart step they become encoder outputs of the batch while codes 0-3 stay as they were."""
  cfg = _micro_config()
  cfg.codebook_restart.update(usage_decay=0.5, every=10, start=10)
  task = vqgan_trainer.make_task(cfg)
  batch = {"image": _images(7, b=2)}
  params = nn.unbox(jax.jit(task.init_params)(_init_key(), batch))
  k = cfg.model.num_codes
  hist = jnp.zeros((k,)).at[:4].set(0.25)
  stats = {"generator": {"upper": hist, "lower": hist}}
  update = jax.jit(task.update_task_state)
  state = task.init_task_state(params)
  np.testing.assert_allclose(state["usage_upper"], 1.0 / k)
  for step in range(8):                 # no restart before step 9 (every=10: steps 9, 19, ...)
    out_params, state, metrics = update(params, state, stats, batch, jax.random.key(1), step)
    for a, b in zip(jax.tree.leaves(out_params), jax.tree.leaves(params)):
      np.testing.assert_array_equal(a, b)
  assert float(metrics["generator/dead_codes_upper"]) == (k - 4) / k
  assert float(metrics["generator/restarted_codes_upper"]) == 0
  out_params, state, metrics = update(params, state, stats, batch, jax.random.key(1), 9)
  assert float(metrics["generator/restarted_codes_upper"]) == k - 4
  upper, _ = task.model.apply({"params": params["generator"]}, batch["image"],
                              method=HalfSplitVQGAN.encode)
  candidates = np.asarray(upper.inputs).reshape(-1, cfg.model.embed_dim)
  before = np.asarray(params["generator"]["quantizer_upper"]["codebook"])
  after = np.asarray(out_params["generator"]["quantizer_upper"]["codebook"])
  np.testing.assert_array_equal(after[:4], before[:4])
  for row in after[4:]:
    assert np.min(np.abs(candidates - row).max(-1)) < 1e-6
  np.testing.assert_allclose(state["usage_upper"][4:], 1.0 / k)   # restarted codes start afresh
  cfg.codebook_restart.enabled = False
  off = vqgan_trainer.make_task(cfg)
  out_params, _, metrics = jax.jit(off.update_task_state)(params, state, stats, batch,
                                                          jax.random.key(1), 9)
  assert "generator/restarted_codes_upper" not in metrics
  for a, b in zip(jax.tree.leaves(out_params), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)


def test_generator_loss_reports_code_histograms_as_stats():
  task = vqgan_trainer.make_task(_micro_config(disc_start=100))
  batch = {"image": _images(8, b=2)}
  params = nn.unbox(jax.jit(task.init_params)(_init_key(), batch))
  _, (metrics, _) = jax.jit(lambda p: task.loss("generator", p, batch, None, 0, None))(params)
  for half in ("upper", "lower"):
    hist = np.asarray(metrics[STATS][half])
    assert hist.shape == (task.model.num_codes,)
    np.testing.assert_allclose(hist.sum(), 1.0, rtol=1e-6)


def test_frozen_nets_must_come_with_the_params(tmp_path):
  """A task configured with LPIPS refuses a loss call whose params lack the frozen nets (it never
  silently drops the term)."""
  from swaptalk_jax import params_file
  from swaptalk_jax.models import lpips as lpips_model
  lpips_file = str(tmp_path / "lpips.safetensors")
  params_file.save_params(lpips_file, lpips_model.init_lpips_params(0), network="lpips",
                        variant="vgg16")
  cfg = _micro_config(disc_start=100)
  cfg.loss.lpips_weight = 1.0
  cfg.pretrained.lpips_path = lpips_file
  task = vqgan_trainer.make_task(cfg)
  assert set(task.frozen_params()) == {"lpips"}
  batch = {"image": _images(9, b=1)}
  params = nn.unbox(jax.jit(task.init_params)(_init_key(), batch))
  with pytest.raises(ValueError, match="lack the frozen nets"):
    task.loss("generator", params, batch, None, 0, None)
  loss, (metrics, _) = jax.jit(lambda p: task.loss("generator", p, batch, None, 0, None))(
      {**params, FROZEN: task.frozen_params()})
  assert "lpips" in metrics and np.isfinite(loss)


@pytest.mark.parametrize("base, twin, size, factor", [("micro", "micro_8x8", 32, 4),
                                                      ("micro_f4", "micro_32x32", 64, 2)])
def test_c1_twins_differ_only_in_compression(base, twin, size, factor):
  """Claim C1's pairs (configs/vqgan.py): micro_8x8 is micro with one more downsampling level (8x8
  tokens at 32 px), micro_32x32 is micro_f4 with one less (32x32 at 64 px, the paper's f8 grid);
  nothing else in the config differs. Shapes only (traced)."""
  a, b = vqgan_config.get_config(base).to_dict(), vqgan_config.get_config(twin).to_dict()
  assert (a.pop("variant"), b.pop("variant")) == (base, twin)
  mult_a, mult_b = a["model"].pop("ch_mult"), b["model"].pop("ch_mult")
  assert abs(len(mult_a) - len(mult_b)) == 1 and mult_a[:2] == mult_b[:2]
  assert a == b and a["data"]["image_size"] == size
  cfg = vqgan_config.get_config(twin)
  model, _, _, (recon, (upper, lower)) = _traced(cfg, size)
  assert model.downsample_factor == factor
  grid = size // factor
  assert recon.shape == (2, size, size, 3)
  assert upper.quantized.shape == lower.quantized.shape == (2, grid // 2, grid, cfg.model.embed_dim)
