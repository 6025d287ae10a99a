"""Held-out evaluation of the swap stage on exact ground truth (synthetic cross-identity pairs).

For every clip of a split whose exact swap ground truth shows another identity of the same split,
a few evenly spaced target frames are swapped with ONE photo of that identity (the first frame of
its first clip). Each candidate is scored against the rendered ground truth:
  swap          D(T~_VQ), the trained module
  no_swap       the target unchanged          paste_source   the source photo pasted as is
  vqgan_target  D(T_VQ)                       vqgan_source   D(S_VQ)  (the trivial swaps in token space)
  vqgan_gt      D(E(ground truth)): the ceiling of any swap in this VQGAN's token space
Figures: L1 and SSIM to the ground truth (whole face and lower half), identity retrieval of the
source identity among the split's identities with dlib's recogniser (gallery: the split's frames
outside the source photo's clip; independent of any net we train), and the 68-landmark distance to
the ground truth (metrics/lmd.py landmarks, pixels of a 256-px crop): pose and expression kept.
Optionally, retrieval with an identity net of ours (`identity=(IdentityNet, params)`: nearest
gallery embedding by cosine), the net the identity losses train through, next to dlib's.
`swap_pair_values` keeps every figure per pair (with each pair's target clip, the unit a paired
bootstrap resamples: benchmarks/claims.py C3); `swap_scores` is their mean.
`Evaluator` runs it in periodic eval (`config.evals.<name>.type = 'swap_pairs'`).
"""
import jax
import jax.numpy as jnp
import numpy as np

from swaptalk_jax.data import dataset, records
from swaptalk_jax.metrics.image_quality import ssim

CANDIDATES = ("swap", "no_swap", "paste_source", "vqgan_target", "vqgan_source", "vqgan_gt")


def heldout_pairs(dataset_dir, split: str, size: int, frames_per_clip: int = 4) -> dict:
  """Cross-identity pairs with exact ground truth: float [-1, 1] source/target/target_gt
  [N, size, size, 3], source_identity/target_identity/source_clip/target_clip [N] str."""
  reader = dataset.SplitReader(str(dataset_dir), split)
  by_identity = {}
  for entry in reader.clips:
    by_identity.setdefault(entry.identity, []).append(entry)

  def frame(entry, index, key="frames_jpeg"):
    record, local = entry.chunk_of_frame(index)
    return records.decode_frames(reader.read([record])[0], [local], reader.where(record), key=key,
                                 size=size)[0]

  photos = {ident: (clips[0].clip_id, frame(clips[0], 0)) for ident, clips in by_identity.items()}
  out = {k: [] for k in ("source", "target", "target_gt", "source_identity", "target_identity",
                         "source_clip", "target_clip")}
  for entry in reader.clips:
    other = entry.extras.get("swap_gt_identity")
    if other is None or other not in photos or other == entry.identity:
      continue
    for index in dataset.evenly_spaced(entry.num_frames, frames_per_clip):
      out["source"].append(photos[other][1])
      out["target"].append(frame(entry, index))
      out["target_gt"].append(frame(entry, index, "x_swap_gt_frames"))
      out["source_identity"].append(other)
      out["target_identity"].append(entry.identity)
      out["source_clip"].append(photos[other][0])
      out["target_clip"].append(entry.clip_id)
  if not out["source"]:
    raise ValueError(f"{dataset_dir} {split}: no clip has an exact swap ground truth of another "
                     "identity of the split (the synthetic set renders one per clip)")
  images = ("source", "target", "target_gt")
  return {k: np.stack(v).astype(np.float32) / 127.5 - 1.0 if k in images else np.array(v)
          for k, v in out.items()}


def predict_candidates(task, params, pairs: dict, batch_size: int = 16, predict=None) -> dict:
  """{candidate: float [-1, 1] images [N, S, S, 3]} of every CANDIDATES entry."""
  def candidates(params, batch):
    s, t, r = task.encode(params, batch["source"], batch["target"], batch["target_gt"])
    swapped = task.swap_tokens(params, s, t)
    decoded = task.decode(params, jnp.concatenate([swapped, t, s, r], axis=0))
    return dict(zip(("swap", "vqgan_target", "vqgan_source", "vqgan_gt"),
                    jnp.split(jnp.clip(decoded, -1.0, 1.0), 4, axis=0)))

  fn = predict(candidates) if predict is not None else jax.jit(candidates)
  n = len(pairs["source"])
  outputs = []
  for start in range(0, n, batch_size):
    batch = {k: pairs[k][start:start + batch_size] for k in ("source", "target", "target_gt")}
    pad = batch_size - len(batch["source"])
    batch = {k: np.concatenate([v, np.repeat(v[-1:], pad, 0)]) for k, v in batch.items()}
    outputs.append(jax.device_get(fn(params, batch)))
  out = {k: np.concatenate([o[k] for o in outputs])[:n] for k in outputs[0]}
  out.update(no_swap=pairs["target"], paste_source=pairs["source"])
  return out


def pair_image_values(images: np.ndarray, truth: np.ndarray) -> dict[str, np.ndarray]:
  """Per-pair L1 (in [0, 1] units), lower-half L1 and SSIM [N] of [-1, 1] images against the truth."""
  x = np.clip((images + 1.0) * 0.5, 0, 1)
  y = np.clip((truth + 1.0) * 0.5, 0, 1)
  half = x.shape[1] // 2
  error = np.abs(x - y)
  return {"l1": error.mean(axis=(1, 2, 3)), "l1_lower": error[:, half:].mean(axis=(1, 2, 3)),
          "ssim": np.asarray(jax.device_get(ssim(jnp.asarray(x), jnp.asarray(y))), np.float64)}


def image_scores(images: np.ndarray, truth: np.ndarray) -> dict:
  """Mean L1 (in [0, 1] units), lower-half L1 and SSIM of [-1, 1] images against the truth."""
  return {k: float(np.mean(v)) for k, v in pair_image_values(images, truth).items()}


def nearest_hits(queries: np.ndarray, labels: np.ndarray, reference: np.ndarray,
                 gallery_labels: np.ndarray, cosine: bool = False) -> np.ndarray:
  """bool [N]: the nearest reference descriptor (Euclidean, or largest cosine) has the label."""
  if cosine:
    q = queries / np.linalg.norm(queries, axis=-1, keepdims=True)
    r = reference / np.linalg.norm(reference, axis=-1, keepdims=True)
    nearest = np.argmax(q @ r.T, axis=1)
  else:
    from swaptalk_jax.face import recognition as identity_lib  # pylint: disable=g-import-not-at-top
    nearest = np.argmin(identity_lib.distance(queries[:, None], reference[None]), axis=1)
  return gallery_labels[nearest] == labels


def dlib_descriptors(images: np.ndarray) -> np.ndarray:
  """dlib descriptors [N, 128] of synthetic-layout face crops (uint8 or [-1, 1] float)."""
  from swaptalk_jax.metrics import identity_preservation as idp  # pylint: disable=g-import-not-at-top
  return idp.embed_crops(images)


def identity_retrieval(images: np.ndarray, labels: np.ndarray, gallery: np.ndarray,
                       gallery_labels: np.ndarray) -> float:
  """dlib top-1: share of `images` whose nearest gallery descriptor has their label."""
  return float(np.mean(nearest_hits(dlib_descriptors(images), labels, dlib_descriptors(gallery),
                                    gallery_labels)))


def net_embeddings(identity, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
  """Embeddings [N, D] of [-1, 1] float or uint8 images by `identity` = (IdentityNet, params)."""
  net, params = identity
  images = np.asarray(images)
  if images.dtype == np.uint8:
    images = images.astype(np.float32) / 127.5 - 1.0
  fn = jax.jit(net.embed)
  out = [np.asarray(jax.device_get(fn(params, images[i:i + batch_size])), np.float64)
         for i in range(0, len(images), batch_size)]
  return np.concatenate(out)


def landmark_distances(images: np.ndarray, truth: np.ndarray) -> np.ndarray:
  """Per-pair mean distance [N] of the 68 dlib landmarks to the truth's, pixels of a 256-px crop."""
  from swaptalk_jax.metrics import identity_preservation as idp  # pylint: disable=g-import-not-at-top
  from swaptalk_jax.metrics import lmd  # pylint: disable=g-import-not-at-top
  truth_points, boxes = lmd.crop_landmarks(truth, idp.SYNTHETIC_FACE_BOX)
  points, _ = lmd.crop_landmarks(images, boxes=boxes)
  return np.mean(np.linalg.norm(points - truth_points, axis=-1), axis=-1)


def landmark_distance(images: np.ndarray, truth: np.ndarray) -> float:
  """Mean distance of all 68 dlib landmarks to the truth's, pixels of a 256-px crop."""
  return float(np.mean(landmark_distances(images, truth)))


def swap_pair_values(task, params, dataset_dir, split: str, size: int, frames_per_clip: int = 4,
                     use_dlib: bool = True, predict=None, identity=None,
                     candidates=CANDIDATES) -> dict:
  """Every figure per pair: {'values': {candidate: {metric: [N]}}, 'target_clip': [N],
  'source_identity': [N], 'chance': {...}, 'ground_truth': {...}} (the last two with dlib or
  `identity`). Metrics: l1, l1_lower, ssim; with dlib id_top1 (0/1) and landmarks; with `identity`
  = (IdentityNet, params) id_top1_net (0/1, the same gallery)."""
  unknown = sorted(set(candidates) - set(CANDIDATES))
  if unknown:
    raise ValueError(f"unknown swap candidates {unknown}; choose from {CANDIDATES}")
  pairs = heldout_pairs(dataset_dir, split, size, frames_per_clip)
  images = predict_candidates(task, params, pairs, predict=predict)
  values = {name: pair_image_values(images[name], pairs["target_gt"]) for name in candidates}
  out = {"values": values, "target_clip": pairs["target_clip"],
         "source_identity": pairs["source_identity"], "chance": {}, "ground_truth": {}}
  if not (use_dlib or identity is not None):
    return out
  gallery, labels, clips = dataset.labelled_frames(dataset_dir, split, frames_per_clip, size)
  keep = ~np.isin(clips, pairs["source_clip"])   # never the source photo's own clip
  gallery, labels = gallery[keep], labels[keep]
  wanted = pairs["source_identity"]
  out["chance"]["id_top1"] = float(np.mean([np.mean(labels == l) for l in wanted]))
  embedders = []
  if use_dlib:
    embedders.append(("id_top1", dlib_descriptors, False))
  if identity is not None:
    embedders.append(("id_top1_net", lambda x: net_embeddings(identity, x), True))
  for key, embed, cosine in embedders:
    reference = embed(gallery)
    for name in candidates:
      values[name][key] = nearest_hits(embed(images[name]), wanted, reference, labels,
                                       cosine).astype(np.float64)
    out["ground_truth"][key] = float(np.mean(nearest_hits(embed(pairs["target_gt"]), wanted,
                                                          reference, labels, cosine)))
  if use_dlib:
    for name in candidates:
      values[name]["landmarks"] = landmark_distances(images[name], pairs["target_gt"])
  return out


def swap_scores(task, params, dataset_dir, split: str, size: int, frames_per_clip: int = 4,
                use_dlib: bool = True, predict=None, identity=None) -> dict[str, dict[str, float]]:
  """{candidate: {l1, l1_lower, ssim[, id_top1, landmarks][, id_top1_net]}} on the held-out pairs
  of `split` (means of swap_pair_values), plus 'chance': {id_top1} and 'ground_truth': {id_top1
  [, id_top1_net]} (the exact swap retrieved) when an identity figure is computed."""
  result = swap_pair_values(task, params, dataset_dir, split, size, frames_per_clip, use_dlib,
                            predict, identity)
  scores = {name: {k: float(np.mean(v)) for k, v in row.items()}
            for name, row in result["values"].items()}
  if result["chance"]:
    scores["chance"] = result["chance"]
    scores["ground_truth"] = result["ground_truth"]
  return scores


def format_table(scores: dict) -> str:
  """The scores as a plain text table (one row per candidate)."""
  columns = ["l1", "l1_lower", "ssim", "id_top1", "landmarks"]
  lines = ["candidate      " + "  ".join(f"{c:>9}" for c in columns)]
  for name, row in scores.items():
    lines.append(f"{name:<14} " + "  ".join(
        f"{row[c]:9.4f}" if c in row else f"{'':>9}" for c in columns))
  return "\n".join(lines)


class Evaluator:
  """`config.evals.<name> = dict(type='swap_pairs', frames_per_clip=4, dlib=True)`: swap_scores on
  the eval split of the first data source, flattened to '<candidate>/<figure>'."""

  def __init__(self, config, context):
    from swaptalk_jax.data import pipelines  # pylint: disable=g-import-not-at-top
    self.config, self.context = config, context
    data = context.config.data
    self.dataset_dir = pipelines.dataset_path(data.sources[0])
    self.split, self.size = data.eval_split, data.image_size

  def run(self, params) -> dict[str, float]:
    scores = swap_scores(self.context.task, params, self.dataset_dir, self.split, self.size,
                         self.config.get("frames_per_clip", 4), self.config.get("dlib", True),
                         predict=self.context.jit_predict)
    return {f"{name}/{k}": v for name, row in scores.items() for k, v in row.items()}
