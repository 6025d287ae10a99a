"""Readers shared by the converters: PyTorch checkpoints without torch, and ONNX graphs.

`read_torch_checkpoint` understands both torch serialisations (the zip format of torch>=1.6 and the
older sequential-pickle format, e.g. the lpips package's heads) with a restricted unpickler: only
tensors, storages and plain containers are rebuilt, so no code from the file runs and torch is not
needed (the Python 3.12 environment has none).
"""
import collections
import io
import pickle
import struct
import zipfile
from typing import Any, Callable, Mapping

import ml_dtypes
import numpy as np

from swaptalk_jax import params_file

_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16, "LongStorage": np.int64, "IntStorage": np.int32,
    "ShortStorage": np.int16, "CharStorage": np.int8, "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
_LEGACY_MAGIC = 0x1950a86a20f9469cfc6c


class _Storage:
  """A storage referenced by the pickle; its bytes are attached once read."""

  def __init__(self, key: str, dtype: Any):
    self.key, self.dtype, self.array = key, np.dtype(dtype), None


class _LazyTensor:
  """torch._utils._rebuild_tensor_v2 arguments, materialised once the storage bytes are known."""

  def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
    self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

  def materialise(self) -> np.ndarray:
    data = self.storage.array
    if not self.size:
      return np.array(data[self.offset])
    itemsize = data.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        data[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
    return np.array(view)


def _rebuild_tensor(storage, offset, size, stride, *unused):
  return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *unused):
  return data


class _RestrictedUnpickler(pickle.Unpickler):
  """Rebuilds only tensors/storages/containers; any other class in the file is an error."""

  def __init__(self, file, storages: dict[str, _Storage], source: str):
    super().__init__(file, encoding="latin1")
    self._storages, self._source = storages, source

  def find_class(self, module: str, name: str) -> Any:
    if module == "collections" and name == "OrderedDict":
      return collections.OrderedDict
    if module == "torch._utils" and name == "_rebuild_tensor_v2":
      return _rebuild_tensor
    if module == "torch._utils" and name == "_rebuild_parameter":
      return _rebuild_parameter
    if module == "torch" and name in _STORAGE_DTYPES:
      return _STORAGE_DTYPES[name]
    raise pickle.UnpicklingError(
        f"{self._source}: the checkpoint contains a {module}.{name} object; only state dicts of "
        "tensors can be converted (save `model.state_dict()`)")

  def persistent_load(self, pid: Any) -> Any:
    if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
      raise pickle.UnpicklingError(f"{self._source}: unknown persistent id {pid!r}")
    storage_type, key = pid[1], str(pid[2])
    if len(pid) > 5 and pid[5] is not None:
      raise pickle.UnpicklingError(f"{self._source}: storage views are not supported")
    if key not in self._storages:
      self._storages[key] = _Storage(key, storage_type)
    return self._storages[key]


def _materialise(obj: Any) -> Any:
  if isinstance(obj, _LazyTensor):
    return obj.materialise()
  if isinstance(obj, Mapping):
    return type(obj)((k, _materialise(v)) for k, v in obj.items())
  if isinstance(obj, (list, tuple)):
    return type(obj)(_materialise(v) for v in obj)
  return obj


def _read_zip_checkpoint(path: str) -> Any:
  with zipfile.ZipFile(path) as archive:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
    if not pickles:
      raise params_file.PretrainedFileError(f"{path}: zip file without data.pkl, not a torch checkpoint")
    prefix = pickles[0][:-len("data.pkl")]
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(io.BytesIO(archive.read(pickles[0])), storages, path).load()
    for key, storage in storages.items():
      storage.array = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=storage.dtype)
  return _materialise(obj)


def _read_legacy_checkpoint(path: str) -> Any:
  with open(path, "rb") as f:
    magic = pickle.load(f)
    if magic != _LEGACY_MAGIC:
      raise params_file.PretrainedFileError(f"{path}: not a torch checkpoint (bad magic number)")
    pickle.load(f)  # protocol version
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", True):
      raise params_file.PretrainedFileError(f"{path}: big-endian torch checkpoints are not supported")
    storages: dict[str, _Storage] = {}
    obj = _RestrictedUnpickler(f, storages, path).load()
    keys = pickle.load(f)
    for key in keys:
      (numel,) = struct.unpack("<q", f.read(8))
      storage = storages[str(key)]
      storage.array = np.frombuffer(f.read(numel * storage.dtype.itemsize), dtype=storage.dtype)
  return _materialise(obj)


def read_torch_checkpoint(path: str) -> Any:
  """Loads a torch.save'd object of tensors/containers as numpy arrays, without torch."""
  with open(path, "rb"):
    pass  # a clear FileNotFoundError naming the path
  if zipfile.is_zipfile(path):
    return _read_zip_checkpoint(path)
  return _read_legacy_checkpoint(path)


def read_torch_state_dict(path: str, wrapper_keys=("state_dict", "model", "net")) -> dict[str, np.ndarray]:
  """A flat {name: array} state dict from a .pth, unwrapping {'state_dict': ...} and 'module.'."""
  obj = read_torch_checkpoint(path)
  while isinstance(obj, Mapping):
    inner = [k for k in wrapper_keys if isinstance(obj.get(k), Mapping)]
    if not inner:
      break
    obj = obj[inner[0]]
  if not isinstance(obj, Mapping):
    raise params_file.PretrainedFileError(f"{path}: expected a state dict, found {type(obj).__name__}")
  state = {}
  for key, value in obj.items():
    if isinstance(value, np.ndarray):
      state[key[len("module."):] if key.startswith("module.") else key] = value
  if not state:
    raise params_file.PretrainedFileError(f"{path}: no tensors found in the checkpoint")
  return state


def require_keys(state: Mapping[str, Any], keys, source: str, what: str) -> None:
  """Raises naming the first missing keys, so a wrong checkpoint is reported plainly."""
  missing = [k for k in keys if k not in state]
  if missing:
    raise params_file.PretrainedFileError(f"{source}: not a {what} checkpoint; missing {missing[:5]}"
                     f"{' ...' if len(missing) > 5 else ''} (has e.g. {sorted(state)[:5]})")


def check_shape(array: np.ndarray, shape: tuple, source: str, name: str) -> np.ndarray:
  if tuple(array.shape) != tuple(shape):
    raise params_file.PretrainedFileError(f"{source}: {name} has shape {tuple(array.shape)}, expected {tuple(shape)}")
  return array


def conv_kernel_from_torch(weight: np.ndarray) -> np.ndarray:
  """OIHW (torch / ONNX) -> HWIO (ours)."""
  return np.transpose(np.asarray(weight, np.float32), (2, 3, 1, 0))


class OnnxGraph:
  """An ONNX model's graph as numpy initializers + producer/consumer maps, for structural walks."""

  def __init__(self, path: str):
    import onnx
    from onnx import numpy_helper
    self.path = path
    model = onnx.load(path)
    graph = model.graph
    self.nodes = list(graph.node)
    self.initializers = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in self.nodes:  # Constant nodes act as initializers too
      if node.op_type == "Constant":
        for attr in node.attribute:
          if attr.name == "value":
            self.initializers[node.output[0]] = numpy_helper.to_array(attr.t)
    self.producer = {out: n for n in self.nodes for out in n.output}
    self.consumers: dict[str, list] = collections.defaultdict(list)
    for node in self.nodes:
      for name in node.input:
        self.consumers[name].append(node)
    self.inputs = [i.name for i in graph.input if i.name not in self.initializers]
    self.outputs = [o.name for o in graph.output]

  def attributes(self, node) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}

  def const(self, name: str) -> np.ndarray:
    if name not in self.initializers:
      raise params_file.PretrainedFileError(f"{self.path}: tensor {name!r} is computed, expected a weight")
    return self.initializers[name]

  def next_ops(self, tensor: str, skip: Callable[[Any], bool] = lambda n: False) -> list:
    """Nodes consuming `tensor` (following through nodes for which `skip` is true)."""
    result = []
    for node in self.consumers.get(tensor, []):
      if skip(node):
        result += self.next_ops(node.output[0], skip)
      else:
        result.append(node)
    return result


def convert_torch_file(src: str, dst: str, to_variables: Callable[[dict, str], dict], network: str,
                       variant: str) -> dict:
  """Reads a torch state dict (no torch needed), maps it with `to_variables(state, src)`, writes
  the params file `dst` for `network`/`variant`; returns the variables."""
  variables = to_variables(read_torch_state_dict(src), src)
  params_file.save_params(dst, variables, network=network, variant=variant,
                        extra_metadata={"source": src})
  return variables
