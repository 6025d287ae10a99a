"""Face verification: same/different-identity pairs, a similarity threshold, accuracy and AUC.

Pairs are balanced (as many same-identity as different-identity pairs), so chance is 0.5. Same-
identity pairs take frames of different clips of the identity where it has several (not two frames
of one shot). The threshold is chosen on one set of pairs (e.g. the train split's) and applied to
another (held-out identities): no figure is tuned on the pairs it reports.
"""
import numpy as np


def make_pairs(labels: np.ndarray, groups: np.ndarray, max_pairs: int, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray]:
  """(pairs int [P, 2] of frame indices, same bool [P]): up to max_pairs // 2 of each kind.

  labels: identity of each frame; groups: its clip (same-identity pairs cross clips when the
  identity has > 1 clip)."""
  labels, groups = np.asarray(labels), np.asarray(groups)
  i, j = np.triu_indices(len(labels), k=1)
  same_id = labels[i] == labels[j]
  clips = {l: len(set(groups[labels == l].tolist())) for l in set(labels.tolist())}
  multi_clip = np.array([clips[l] > 1 for l in labels.tolist()], bool)
  same_ok = same_id & ((groups[i] != groups[j]) | ~multi_clip[i])
  same_idx, diff_idx = np.nonzero(same_ok)[0], np.nonzero(~same_id)[0]
  if len(same_idx) == 0 or len(diff_idx) == 0:
    raise ValueError(f"verification pairs need >= 2 identities and >= 2 frames of one identity; "
                     f"got {len(set(labels.tolist()))} identities, {len(labels)} frames")
  rng = np.random.default_rng(seed)
  n = min(len(same_idx), len(diff_idx), max(1, max_pairs // 2))
  chosen = np.concatenate([rng.choice(same_idx, n, replace=False),
                           rng.choice(diff_idx, n, replace=False)])
  return np.stack([i[chosen], j[chosen]], 1), np.concatenate([np.ones(n, bool), np.zeros(n, bool)])


def cosine_scores(features: np.ndarray, pairs: np.ndarray) -> np.ndarray:
  """Cosine similarity of each pair's feature vectors (any shape per item, flattened)."""
  f = np.asarray(features, np.float64).reshape(len(features), -1)
  f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
  return np.sum(f[pairs[:, 0]] * f[pairs[:, 1]], axis=1)


def best_threshold(scores: np.ndarray, same: np.ndarray) -> float:
  """The threshold (score >= t means 'same') of highest accuracy on these pairs (midpoints of the
  sorted scores)."""
  s = np.sort(np.unique(scores))
  candidates = np.concatenate([[s[0] - 1e-6], (s[:-1] + s[1:]) / 2, [s[-1] + 1e-6]])
  accuracy = [np.mean((scores >= t) == same) for t in candidates]
  return float(candidates[int(np.argmax(accuracy))])


def accuracy_at(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
  return float(np.mean((scores >= threshold) == same))


def auc(scores: np.ndarray, same: np.ndarray) -> float:
  """Area under the ROC curve: P(score of a same pair > score of a different pair), ties half."""
  pos, neg = scores[same], scores[~same]
  greater = (pos[:, None] > neg[None, :]).mean()
  ties = (pos[:, None] == neg[None, :]).mean()
  return float(greater + 0.5 * ties)


def verification(train_scores, train_same, test_scores, test_same) -> dict[str, float]:
  """accuracy on the test pairs at the train pairs' best threshold, test AUC, the threshold."""
  t = best_threshold(np.asarray(train_scores), np.asarray(train_same, bool))
  test_same = np.asarray(test_same, bool)
  return {"accuracy": accuracy_at(np.asarray(test_scores), test_same, t),
          "auc": auc(np.asarray(test_scores), test_same), "threshold": t}
