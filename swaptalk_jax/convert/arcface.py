"""ArcFace IResNet checkpoints -> our params file: arcface_torch state dicts (.pth) and ONNX exports.

The .pth path maps arcface_torch's names (layer2.0.downsample.1.running_var, ...). The ONNX path walks
the graph (insightface model packs: BatchNorm folded into the preceding convs, names meaningless):
stem, then one residual block per Add, then BN -> Flatten -> Gemm -> BN. A conv whose BatchNorm was
folded away becomes our conv + an identity BatchNorm carrying the folded bias.
"""
from typing import Any

import numpy as np

from swaptalk_jax import params_file
from swaptalk_jax.convert import common
from swaptalk_jax.models import arcface

NETWORK = "arcface"
_IDENTITY_VAR = 1.0 - arcface.BN_EPSILON  # var + eps == 1: a BatchNorm that only adds its bias


def _expected_params(variant: str) -> dict:
  """Shapes of the model's params (no computation)."""
  return arcface.arcface_param_shapes(variant)


def _fc_kernel(weight: np.ndarray, channels: int) -> np.ndarray:
  """torch fc weight [O, C*H*W] (NCHW flatten) -> our kernel [H*W*C, O] (NHWC flatten)."""
  out_features, in_features = weight.shape
  side = int(round((in_features / channels) ** 0.5))
  kernel = weight.reshape(out_features, channels, side, side).transpose(2, 3, 1, 0)
  return np.ascontiguousarray(kernel.reshape(in_features, out_features), np.float32)


def _bn(scale, bias, mean, var, epsilon=arcface.BN_EPSILON) -> dict:
  """A BatchNorm's tensors in our layout; a different epsilon is absorbed into var."""
  var = np.asarray(var, np.float64) + epsilon - arcface.BN_EPSILON
  return {"scale": np.asarray(scale, np.float32), "bias": np.asarray(bias, np.float32),
          "mean": np.asarray(mean, np.float32), "var": var.astype(np.float32)}


def _bias_only_bn(bias: np.ndarray) -> dict:
  channels = bias.shape[0]
  return _bn(np.ones(channels), bias, np.zeros(channels), np.full(channels, _IDENTITY_VAR))


def variant_from_blocks(blocks, source: str) -> str:
  for name, counts in arcface.VARIANTS.items():
    if tuple(counts) == tuple(blocks):
      return name
  raise params_file.PretrainedFileError(f"{source}: blocks per stage {tuple(blocks)} match no IResNet variant "
                   f"({ {k: v for k, v in arcface.VARIANTS.items()} })")


def _check_variant(found: str, expected: str | None, source: str) -> None:
  if expected is not None and found != expected:
    raise params_file.PretrainedFileError(f"{source}: the checkpoint is IResNet {found}, but --variant {expected} was asked")


# ----------------------------------------------------------------------------- PyTorch state dict
def params_from_state_dict(state: dict[str, np.ndarray], source: str = "state dict",
                           variant: str | None = None) -> tuple[dict, str]:
  """arcface_torch iresnet state dict -> (our params, variant)."""
  common.require_keys(state, ["conv1.weight", "bn1.running_mean", "prelu.weight", "fc.weight",
                              "features.running_var"], source, "arcface_torch IResNet")
  blocks = []
  for stage in range(1, 5):
    count = 0
    while f"layer{stage}.{count}.conv1.weight" in state:
      count += 1
    blocks.append(count)
  found = variant_from_blocks(blocks, source)
  _check_variant(found, variant, source)

  def bn(prefix):
    return _bn(state[f"{prefix}.weight"], state[f"{prefix}.bias"], state[f"{prefix}.running_mean"],
               state[f"{prefix}.running_var"])

  def conv(name):
    return {"kernel": common.conv_kernel_from_torch(state[name])}

  params: dict[str, Any] = {"conv1": conv("conv1.weight"), "bn1": bn("bn1"),
                            "prelu": {"alpha": state["prelu.weight"].reshape(-1).astype(np.float32)}}
  for stage, count in enumerate(blocks, start=1):
    for index in range(count):
      p = f"layer{stage}.{index}"
      block = {"bn1": bn(f"{p}.bn1"), "conv1": conv(f"{p}.conv1.weight"), "bn2": bn(f"{p}.bn2"),
               "prelu": {"alpha": state[f"{p}.prelu.weight"].reshape(-1).astype(np.float32)},
               "conv2": conv(f"{p}.conv2.weight"), "bn3": bn(f"{p}.bn3")}
      if f"{p}.downsample.0.weight" in state:
        block["downsample_conv"] = conv(f"{p}.downsample.0.weight")
        block["downsample_bn"] = bn(f"{p}.downsample.1")
      params[f"layer{stage}_{index}"] = block
  params["bn2"] = bn("bn2")
  params["fc"] = {"kernel": _fc_kernel(state["fc.weight"], arcface.STAGE_WIDTHS[-1]),
                  "bias": state["fc.bias"].astype(np.float32)}
  params["features"] = bn("features")
  params_file.check_params_match(params, _expected_params(found), source)
  return params, found


# ----------------------------------------------------------------------------- ONNX graph
class _OnnxIResNetWalker:
  """Follows an IResNet ONNX graph from its input to its output, collecting our params."""

  _PASS_THROUGH = ("Identity", "Dropout")

  def __init__(self, graph: common.OnnxGraph):
    self.graph = graph
    self.source = graph.path

  def fail(self, message: str):
    raise params_file.PretrainedFileError(f"{self.source}: not an IResNet graph as expected: {message}")

  def consumers(self, tensor: str) -> list:
    return self.graph.next_ops(tensor, skip=lambda n: n.op_type in self._PASS_THROUGH)

  def only(self, tensor: str, op_types) -> Any:
    nodes = [n for n in self.consumers(tensor) if n.op_type in op_types]
    if len(nodes) != 1:
      self.fail(f"expected one {op_types} after {tensor!r}, found "
                f"{[n.op_type for n in self.consumers(tensor)]}")
    return nodes[0]

  def batch_norm(self, node) -> dict:
    g = self.graph
    epsilon = g.attributes(node).get("epsilon", 1e-5)
    return _bn(*(g.const(name) for name in node.input[1:5]), epsilon=epsilon)

  def conv_bn(self, tensor: str, kernel: int, strides: int) -> tuple[dict, dict, str]:
    """Conv consuming `tensor` (+ its BatchNorm, or the folded bias) -> (conv, bn, output)."""
    node = self.only(tensor, ("Conv",))
    attrs = self.graph.attributes(node)
    weight = self.graph.const(node.input[1])
    pad = (kernel - 1) // 2
    if (weight.shape[2:] != (kernel, kernel) or list(attrs.get("strides", [1, 1])) != [strides] * 2
        or list(attrs.get("pads", [0] * 4)) != [pad] * 4 or attrs.get("group", 1) != 1
        or list(attrs.get("dilations", [1, 1])) != [1, 1]):
      self.fail(f"conv {node.name!r}: kernel {weight.shape}, {attrs}; expected {kernel}x{kernel} "
                f"stride {strides} pad {pad}")
    conv = {"kernel": common.conv_kernel_from_torch(weight)}
    output = node.output[0]
    after = self.consumers(output)
    if len(after) == 1 and after[0].op_type == "BatchNormalization":
      if len(node.input) > 2:
        self.fail(f"conv {node.name!r} has a bias and a BatchNorm")
      return conv, self.batch_norm(after[0]), after[0].output[0]
    bias = self.graph.const(node.input[2]) if len(node.input) > 2 else np.zeros(weight.shape[0])
    return conv, _bias_only_bn(bias), output

  def prelu(self, tensor: str) -> tuple[dict, str]:
    node = self.only(tensor, ("PRelu",))
    return {"alpha": self.graph.const(node.input[1]).reshape(-1).astype(np.float32)}, node.output[0]

  def skip_preprocessing(self, tensor: str) -> tuple[str, bool]:
    """Some packs normalise inside the graph ((x - 127.5) * 1/127.5): check and step over it."""
    nodes = self.consumers(tensor)
    if len(nodes) != 1 or nodes[0].op_type not in ("Sub", "Mul", "Div", "Add"):
      return tensor, False
    value = np.array([0.0, 255.0])
    while len(nodes) == 1 and nodes[0].op_type in ("Sub", "Mul", "Div", "Add"):
      node = nodes[0]
      constant = float(np.asarray(self.graph.const(node.input[1])).reshape(-1)[0])
      value = {"Sub": value - constant, "Add": value + constant, "Mul": value * constant,
               "Div": value / constant}[node.op_type]
      tensor, nodes = node.output[0], self.consumers(node.output[0])
    if not np.allclose(value, [-1.0, 1.0], atol=1e-3):
      self.fail(f"in-graph preprocessing maps pixels [0, 255] to {value}, not ArcFace's [-1, 1]")
    return tensor, True

  def walk(self) -> tuple[dict, list[int], bool]:
    if len(self.graph.inputs) != 1:
      self.fail(f"expected one input, found {self.graph.inputs}")
    tensor, in_graph_norm = self.skip_preprocessing(self.graph.inputs[0])
    params: dict[str, Any] = {}
    params["conv1"], params["bn1"], tensor = self.conv_bn(tensor, 3, 1)
    params["prelu"], tensor = self.prelu(tensor)
    blocks: list[int] = []
    while True:
      nodes = self.consumers(tensor)
      bns = [n for n in nodes if n.op_type == "BatchNormalization"]
      if len(bns) != 1:
        self.fail(f"expected a BatchNorm after {tensor!r}, found {[n.op_type for n in nodes]}")
      if len(nodes) == 1:  # the body's end: BN -> Flatten -> Gemm -> BN
        break
      block_input, block = tensor, {"bn1": self.batch_norm(bns[0])}
      block["conv1"], block["bn2"], tensor = self.conv_bn(bns[0].output[0], 3, 1)
      block["prelu"], tensor = self.prelu(tensor)
      downsample = any(n.op_type == "Conv" for n in nodes)
      block["conv2"], block["bn3"], tensor = self.conv_bn(tensor, 3, 2 if downsample else 1)
      add = self.only(tensor, ("Add",))
      other = [name for name in add.input if name != tensor]
      if downsample:
        block["downsample_conv"], block["downsample_bn"], shortcut = self.conv_bn(block_input, 1, 2)
        if other != [shortcut]:
          self.fail(f"block at {block_input!r}: the Add does not join the downsample shortcut")
        blocks.append(1)
      else:
        if other != [block_input]:
          self.fail(f"block at {block_input!r}: the Add does not join the identity shortcut")
        if not blocks:
          self.fail("the first block has no downsample shortcut")
        blocks[-1] += 1
      params[f"layer{len(blocks)}_{blocks[-1] - 1}"] = block
      tensor = add.output[0]
    params["bn2"] = self.batch_norm(bns[0])
    flatten = self.only(bns[0].output[0], ("Flatten", "Reshape"))
    params["fc"], tensor = self.dense(flatten.output[0])
    after = self.consumers(tensor)
    if len(after) == 1 and after[0].op_type == "BatchNormalization":
      params["features"] = self.batch_norm(after[0])
      tensor = after[0].output[0]
    else:
      params["features"] = _bias_only_bn(np.zeros(params["fc"]["bias"].shape))
    if tensor not in self.graph.outputs:
      self.fail(f"the walk ended at {tensor!r}, not at the graph output {self.graph.outputs}")
    return params, blocks, in_graph_norm

  def dense(self, tensor: str) -> tuple[dict, str]:
    node = self.only(tensor, ("Gemm", "MatMul"))
    g = self.graph
    if node.op_type == "Gemm":
      attrs = g.attributes(node)
      weight = g.const(node.input[1]).astype(np.float64) * attrs.get("alpha", 1.0)
      if attrs.get("transA", 0):
        self.fail("Gemm with transA")
      weight = weight if attrs.get("transB", 0) else weight.T  # -> [O, I]
      bias = (g.const(node.input[2]) * attrs.get("beta", 1.0) if len(node.input) > 2
              else np.zeros(weight.shape[0]))
      output = node.output[0]
    else:
      weight = g.const(node.input[1]).T
      add = self.only(node.output[0], ("Add",))
      bias = g.const([n for n in add.input if n != node.output[0]][0])
      output = add.output[0]
    kernel = _fc_kernel(weight.astype(np.float32), arcface.STAGE_WIDTHS[-1])
    return {"kernel": kernel, "bias": np.asarray(bias, np.float32).reshape(-1)}, output


def params_from_onnx(path: str, variant: str | None = None) -> tuple[dict, str, bool]:
  """insightface-style IResNet .onnx -> (our params, variant, whether the graph normalised pixels)."""
  params, blocks, in_graph_norm = _OnnxIResNetWalker(common.OnnxGraph(path)).walk()
  found = variant_from_blocks(blocks, path)
  _check_variant(found, variant, path)
  params_file.check_params_match(params, _expected_params(found), path)
  return params, found, in_graph_norm


def convert(source: str, destination: str, variant: str | None = None, **unused) -> dict[str, str]:
  """`swaptalk convert arcface SRC DST`: .pth/.pt (arcface_torch) or .onnx -> params file."""
  if source.lower().endswith(".onnx"):
    params, found, in_graph_norm = params_from_onnx(source, variant)
    extra = {"source_format": "onnx", "onnx_in_graph_normalisation": str(in_graph_norm)}
  else:
    params, found = params_from_state_dict(common.read_torch_state_dict(source), source, variant)
    extra = {"source_format": "torch"}
  extra["source"] = source
  params_file.save_params(destination, params, network=NETWORK, variant=found, extra_metadata=extra)
  return {"network": NETWORK, "variant": found, **extra}
