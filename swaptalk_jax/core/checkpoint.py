"""One checkpoint path for every stage: Orbax manager saving the train state, the data-iterator
state and the config together in one step directory, asynchronously, with a retention policy.

Restores always go through an abstract state that carries the *target* shardings, so a run saved on
8 devices resumes on 1 or 4. Orbax finalises a step directory atomically (written under a temporary
name, renamed when complete), so a save interrupted by a crash is never restored.
Compatibility (stage, model config, parameter shapes) is checked from metadata before any compile.
"""
import json
import logging
import os
import pathlib
from typing import Any, Optional

import grain
import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from swaptalk_jax.errors import MissingFileError, UserError

# Config sections that must match for a checkpoint to be resumed by a run.
_IDENTITY_KEYS = ("stage", "model")


class CheckpointMismatchError(UserError):
  """A workdir or checkpoint that this run cannot resume."""


def make_manager(workdir: str, keep: int, async_save: bool = True,
                 read_only: bool = False) -> ocp.CheckpointManager:
  """The run's checkpoint manager. A writing one creates checkpoints/ and starts Orbax's cleanup of
  unfinished saves in a background thread; a read_only one does neither (checking a workdir)."""
  options = ocp.CheckpointManagerOptions(
      preservation_policy=ocp.checkpoint_managers.preservation_policy.LatestN(keep),
      enable_async_checkpointing=async_save,
      cleanup_tmp_directories=not read_only,
      create=not read_only,
      read_only=read_only)
  handlers = dict(state=ocp.StandardCheckpointHandler(), config=ocp.JsonCheckpointHandler(),
                  data=grain.checkpoint.CheckpointHandler())
  return ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"),
                               options=options, item_handlers=handlers)


def save(manager: ocp.CheckpointManager, step: int, state: Any, data_iterator: Any,
         config: ml_collections.ConfigDict, force: bool = False) -> bool:
  items = dict(state=ocp.args.StandardSave(state), config=ocp.args.JsonSave(config.to_dict()))
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointSave(data_iterator)
  return manager.save(step, args=ocp.args.Composite(**items), force=force)


def _saved_config(manager: ocp.CheckpointManager, step: int) -> dict:
  path = os.path.join(manager.directory, str(step), "config", "metadata")
  try:
    with open(path) as f:
      return json.load(f)
  except (OSError, json.JSONDecodeError) as e:
    raise CheckpointMismatchError(f"checkpoint {manager.directory}/{step} has no readable config "
                                  f"({path}): {e}") from None


def _path_name(path) -> str:
  """'params/generator/Conv_0/kernel' for attribute, dict and sequence keys alike."""
  parts = []
  for key in path:
    for attr in ("name", "key", "idx"):
      if hasattr(key, attr):
        parts.append(str(getattr(key, attr)))
        break
  return "/".join(parts)


def check_compatible(manager: ocp.CheckpointManager, step: int, config: ml_collections.ConfigDict,
                     abstract_state: Any) -> None:
  """Raises CheckpointMismatchError (one line) if the checkpoint at `step` is not this run's kind."""
  saved = _saved_config(manager, step)
  current = json.loads(config.to_json())
  for key in _IDENTITY_KEYS:
    if saved.get(key) != current.get(key):
      raise CheckpointMismatchError(
          f"workdir {os.path.dirname(manager.directory)} holds checkpoints of another config: "
          f"config.{key} differs (saved {json.dumps(saved.get(key), sort_keys=True)[:200]} vs "
          f"this run {json.dumps(current.get(key), sort_keys=True)[:200]}); use another --workdir")
  metadata = manager.item_metadata(step)["state"]
  saved_tree = getattr(metadata, "tree", metadata)
  saved_shapes = {_path_name(p): tuple(m.shape) for p, m in
                  jax.tree_util.tree_flatten_with_path(saved_tree)[0] if hasattr(m, "shape")}
  wanted = {_path_name(p): tuple(np.shape(x)) for p, x in
            jax.tree_util.tree_flatten_with_path(abstract_state)[0]}
  missing = sorted(set(wanted) - set(saved_shapes))
  extra = sorted(set(saved_shapes) - set(wanted))
  if missing or extra:
    raise CheckpointMismatchError(
        f"checkpoint {manager.directory}/{step} is from an incompatible model: "
        f"{len(missing)} params missing (e.g. {missing[:2]}), {len(extra)} unexpected (e.g. {extra[:2]})")
  for key, shape in wanted.items():
    if saved_shapes[key] != shape:
      raise CheckpointMismatchError(
          f"checkpoint {manager.directory}/{step} is from an incompatible model: {key} has shape "
          f"{saved_shapes[key]} in the checkpoint, {shape} in this model")


def restore(manager: ocp.CheckpointManager, step: int, abstract_state: Any,
            data_iterator: Optional[Any]) -> tuple[Any, Any]:
  """Restores (state, data_iterator) at `step`; `abstract_state` leaves are ShapeDtypeStructs with
  the target shardings. Without a data iterator (or its saved state) the iterator is returned as is."""
  fresh_iterator = data_iterator
  items = dict(state=ocp.args.StandardRestore(abstract_state))
  data_file = os.path.join(manager.directory, str(step), "data",
                           f"process_{jax.process_index()}-of-{jax.process_count()}.json")
  if data_iterator is not None and not os.path.exists(data_file):
    logging.warning("checkpoint step %d has no data-iterator state for process %d of %d (saved with "
                    "another process count?): the input pipeline starts from its beginning",
                    step, jax.process_index(), jax.process_count())
    data_iterator = None
  if data_iterator is not None:
    items["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
  restored = manager.restore(step, args=ocp.args.Composite(**items))
  logging.info("restored checkpoint step %d from %s", step, manager.directory)
  return restored["state"], (restored["data"] if data_iterator is not None else fresh_iterator)


# ----------------------------------------------------------------------------- reading a run's params
def step_dir(path: str, step: Optional[int] = None) -> pathlib.Path:
  """The step folder of a `swaptalk train` run: `path` is the workdir, its checkpoints/ folder or
  one step folder; `step` picks a step (default: the latest complete one)."""
  p = pathlib.Path(path).absolute()   # Orbax reads absolute paths only (a relative --run works)
  if (p / "state").is_dir() and step is None:
    return p
  if (p / "checkpoints").is_dir():
    p = p / "checkpoints"
  steps = {int(d.name): d for d in p.glob("*") if d.name.isdigit() and (d / "state").is_dir()}
  if not steps:
    raise MissingFileError(f"no checkpoint under {path} (expected <workdir>/checkpoints/<step>/state "
                           "written by `swaptalk train`)")
  if step is None:
    return steps[max(steps)]
  if step not in steps:
    raise MissingFileError(f"no checkpoint of step {step} under {path}; it has steps {sorted(steps)}")
  return steps[step]


def load_params(workdir: str, group: str = "generator", ema: bool = True,
                step: Optional[int] = None) -> tuple[Any, int, ml_collections.ConfigDict]:
  """One parameter group of a `swaptalk train` run, for inference or as a frozen net of a later
  stage: (params as host numpy arrays, step, the run's stored config).

  ema=True takes the group's EMA params where the run kept them (config-dependent: see the Task's
  ema_groups), else its raw params; ema=False always the raw params.
  """
  directory = step_dir(workdir, step)
  state = ocp.StandardCheckpointer().restore(directory / "state")
  groups = state.get("params", {})
  if group not in groups:
    raise UserError(f"{directory}: no parameter group {group!r} in the checkpoint; it has "
                    f"{sorted(groups)}")
  ema_params = state.get("ema_params") or {}
  params = ema_params[group] if ema and group in ema_params else groups[group]
  config_file = directory / "config" / "metadata"
  try:
    config = ml_collections.ConfigDict(json.loads(config_file.read_text()))
  except (OSError, json.JSONDecodeError) as e:
    raise UserError(f"{directory}: no readable config ({config_file}): {e}") from None
  return params, int(directory.name), config
