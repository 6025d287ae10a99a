"""The swap module (models/swap.py): shapes, identity only through the source tokens, named
parameters, nearest-code snapping, and the paper-size transformer compiled FSDP-sharded on 8 fake
devices (compiled only, never run)."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from compile_only import compile_only
from configs import swap as swap_configs
from swaptalk_jax.core import sharding
from swaptalk_jax.losses import swap as swap_losses
from swaptalk_jax.models.swap import SwapTransformer, SwapUNet, quantize_to_codes, \
    swap_model_from_config
from swaptalk_jax.models.vqgan import HalfSplitVQGAN

GRID, DIM = (16, 16), 16


def tokens(seed, batch=2):
  return jax.random.normal(jax.random.key(seed), (batch,) + GRID + (DIM,))


def small_transformer(**kw):
  return SwapTransformer(width=32, num_layers=2, num_heads=2, head_dim=16, mlp_dim=64, **kw)


@pytest.mark.parametrize("model", [small_transformer(), small_transformer(self_attention=True),
                                   SwapUNet(width=16, width_mult=(1, 2), num_res_blocks=1,
                                            num_groups=4)],
                         ids=["transformer", "transformer_self_attention", "unet"])
def test_shapes_names_and_identity_through_the_source(model):
  source, target = tokens(0), tokens(1)
  variables = model.init(jax.random.key(2), source, target)
  specs = jax.tree.leaves(nn.get_partition_spec(variables), is_leaf=lambda x: isinstance(
      x, jax.sharding.PartitionSpec))
  assert specs and all(isinstance(s, jax.sharding.PartitionSpec) and len(s) > 0 for s in specs)
  params = nn.unbox(variables)
  out = model.apply(params, source, target)
  assert out.shape == target.shape and out.dtype == jnp.float32
  # Identity can only come from the source: the same target with another source gives another
  # output, while the output is a function of (source, target) alone (deterministic).
  other = model.apply(params, tokens(3), target)
  assert float(jnp.mean(jnp.abs(other - out))) > 1e-3
  np.testing.assert_array_equal(model.apply(params, source, target), out)
  # Per-example: example 0's output does not depend on example 1's source.
  mixed_source = source.at[1].set(tokens(4)[1])
  np.testing.assert_allclose(model.apply(params, mixed_source, target)[0], out[0], atol=1e-5)


def test_transformer_cross_attention_reads_the_whole_source():
  """Queries from the target attend to every source token: changing one source token anywhere
  changes outputs at other positions (a UNet by concatenation only sees its receptive field)."""
  model = small_transformer()
  source, target = tokens(0, 1), tokens(1, 1)
  params = nn.unbox(model.init(jax.random.key(2), source, target))
  out = model.apply(params, source, target)
  moved = model.apply(params, source.at[0, 0, 0].add(3.0), target)
  assert float(jnp.abs(moved - out)[0, 15, 15].max()) > 1e-4


def test_bad_token_grids_fail_in_one_line():
  model = small_transformer()
  with pytest.raises(ValueError, match="same shape|must both be"):
    model.init(jax.random.key(0), tokens(0), jnp.zeros((2, 8, 16, DIM)))
  with pytest.raises(ValueError, match="even"):
    model.init(jax.random.key(0), jnp.zeros((1, 3, 4, DIM)), jnp.zeros((1, 3, 4, DIM)))


def test_quantize_to_codes_snaps_each_half_to_its_codebook():
  vqgan = HalfSplitVQGAN(ch=8, ch_mult=(1, 2), num_res_blocks=1, z_channels=8, embed_dim=DIM,
                         num_codes=32, num_groups=4)
  params = nn.unbox(vqgan.init(jax.random.key(0), jnp.zeros((1, 32, 32, 3))))["params"]
  out = np.asarray(quantize_to_codes(vqgan, params, tokens(5, 1)))
  upper = np.asarray(params["quantizer_upper"]["codebook"])
  lower = np.asarray(params["quantizer_lower"]["codebook"])
  rows_in = lambda x, book: np.all(np.any(np.all(np.isclose(x[..., None, :], book), -1), -1))
  assert rows_in(out[0, :8].reshape(-1, DIM), upper) and rows_in(out[0, 8:].reshape(-1, DIM), lower)


def test_proxy_loss_counts_only_examples_with_ground_truth():
  a, b = tokens(0), tokens(1)
  assert float(swap_losses.proxy_loss(a, b, jnp.array([False, False]))) == 0.0
  half = float(swap_losses.proxy_loss(a, b.at[1].set(a[1]), jnp.array([True, True])))
  one = float(swap_losses.proxy_loss(a, b, jnp.array([True, False])))
  np.testing.assert_allclose(half, one / 2, rtol=1e-5)


@pytest.mark.slow
def test_paper_transformer_compiles_fsdp_sharded_on_8_devices():
  """configs/swap.py:transformer (16x16 tokens of the f16 VQGAN, D=256): one AdamW step of the
  swap module on L_proxy, parameters FSDP-sharded over 8 devices, batch 64; lowered and compiled
  only. Prints parameters, FLOPs and memory per device."""
  config = swap_configs.get_config("transformer")
  model = swap_model_from_config(config.model, jnp.bfloat16)
  mesh = sharding.make_mesh({"data": 1, "fsdp": 8}, jax.devices()[:8])
  grid = (16, 16, config.model.token_dim)
  batch = 64
  tx = optax.adamw(1e-4)
  x = jax.ShapeDtypeStruct((batch,) + grid, jnp.float32)
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    boxed = jax.eval_shape(model.init, jax.random.key(0), x, x)["params"]
  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    param_shardings = sharding.logical_to_shardings(boxed, mesh, min_size=config.fsdp_min_size)
  abstract = sharding.strip_boxes(boxed)
  num_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(abstract))
  sharded = sum(1 for s in jax.tree.leaves(param_shardings) if any(a for a in s.spec))
  assert sharded >= 4 * config.model.num_layers   # the blocks' big kernels are fsdp-sharded

  def step(params, opt_state, source, target, res):
    def loss_fn(p):
      out = model.apply({"params": p}, source, target)
      return swap_losses.proxy_loss(out, res, jnp.ones((source.shape[0],), bool))
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  with jax.set_mesh(mesh), nn.logical_axis_rules(sharding.LOGICAL_RULES):
    boxed_opt = jax.eval_shape(tx.init, boxed)   # Adam's moments keep the params' axis names
    opt_shardings = sharding.logical_to_shardings(boxed_opt, mesh, min_size=config.fsdp_min_size)
  opt_abstract = sharding.strip_boxes(boxed_opt)
  data = sharding.batch_sharding(mesh)
  with jax.set_mesh(mesh):
    compiled = compile_only(   # inspected, never run (tests/compile_only.py)
        jax.jit(step, in_shardings=(param_shardings, opt_shardings, data, data, data),
                out_shardings=(param_shardings, opt_shardings, sharding.replicated(mesh)),
                donate_argnums=(0, 1)).lower(abstract, opt_abstract, x, x, x))
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  memory = compiled.memory_analysis()
  per_device = (memory.argument_size_in_bytes + memory.temp_size_in_bytes
                + memory.output_size_in_bytes - memory.alias_size_in_bytes)
  print(f"paper swap transformer: {num_params / 1e6:.1f} M params ({sharded} sharded arrays), "
        f"{cost.get('flops', float('nan')) / 1e9:.1f} GFLOP per step per device (batch {batch} "
        f"over 8), memory per device {per_device / 2**20:.0f} MiB (arguments "
        f"{memory.argument_size_in_bytes / 2**20:.0f}, temporaries {memory.temp_size_in_bytes / 2**20:.0f})")
  params_bytes = 4 * num_params
  assert memory.argument_size_in_bytes < 3 * params_bytes / 8 + 3 * 64 * 256 * 256 * 4 / 8 * 2
  assert num_params > 10e6
