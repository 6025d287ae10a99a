"""Consistency, ID retrieve and FD-dlib: parity with independent formulas (sklearn's cosine, a
brute-force nearest neighbour, a direct Frechet distance), then dlib on synthetic clips next to a
mixed-identity baseline, and bad input."""
import numpy as np
import pytest
import scipy.linalg

from metrics_clips import synthetic_clip
from swaptalk_jax.metrics import consistency, face_fd

FRAMES = slice(0, 30, 4)  # 8 frames per clip keeps dlib's cost to ~2 s


def test_consistency_parity_with_sklearn_cosine():
  pairwise = pytest.importorskip("sklearn.metrics.pairwise")
  e = np.random.default_rng(0).normal(size=(12, 128))
  ref = 100.0 * pairwise.cosine_similarity(e, e.mean(0, keepdims=True)).mean()
  assert consistency.consistency(e) == pytest.approx(ref, abs=1e-10)
  assert consistency.consistency(np.tile(e[:1], (5, 1))) == pytest.approx(100.0)


def test_id_retrieve_parity_with_brute_force():
  rng = np.random.default_rng(1)
  gallery, labels = rng.normal(size=(9, 16)), np.array(list("abcabcabc"))
  queries, qlabels = rng.normal(size=(20, 16)), rng.choice(list("abc"), 20)
  expected = [labels[min(range(9), key=lambda g: np.sum((q - gallery[g]) ** 2))] == l
              for q, l in zip(queries, qlabels)]
  np.testing.assert_array_equal(consistency.id_retrieve(queries, qlabels, gallery, labels), expected)


def test_fd_parity_with_direct_formula():
  rng = np.random.default_rng(2)
  a, b = rng.normal(size=(300, 128)), rng.normal(0.3, 1.2, size=(260, 128))
  mu1, mu2 = a.mean(0), b.mean(0)
  s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  ref = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
  assert face_fd.fd_from_embeddings(a, b) == pytest.approx(ref, rel=1e-6)


def test_dlib_identity_columns_on_synthetic_clips():
  """A clip's own frames vs a clip alternating two identities; the gallery is each identity's
  other clip. Printed figures are the parity/baseline pair of the benchmark."""
  a, a2, b = synthetic_clip(1), synthetic_clip(1, 1), synthetic_clip(2)
  b2 = synthetic_clip(2, 1)
  ea = consistency.clip_consistency(a.frames[FRAMES])[1]
  eb = consistency.clip_consistency(b.frames[FRAMES])[1]
  mixed = np.concatenate([ea[::2], eb[1::2]])
  own, mix = consistency.consistency(ea), consistency.consistency(mixed)
  gallery = np.concatenate([consistency.clip_consistency(c.frames[FRAMES])[1] for c in (a2, b2)])
  labels = np.array([a.identity] * 8 + [b.identity] * 8)
  top1 = consistency.id_retrieve(ea, [a.identity] * 8, gallery, labels).mean()
  wrong = consistency.id_retrieve(eb, [a.identity] * 8, gallery, labels).mean()
  fd_same = face_fd.fd_from_embeddings(ea, gallery[:8])
  fd_other = face_fd.fd_from_embeddings(ea, gallery[8:])
  print(f"consistency own {own:.2f} vs mixed {mix:.2f}; ID retrieve {top1:.2f} vs wrong-identity "
        f"{wrong:.2f}; FD-dlib same id {fd_same:.3f} vs other id {fd_other:.3f}")
  assert own > mix
  assert top1 > wrong
  assert fd_same < fd_other


def test_bad_input():
  with pytest.raises(ValueError, match="at least 2 frames"):
    consistency.consistency(np.ones((1, 128)))
  with pytest.raises(ValueError, match=r"\['z'\] have no descriptor"):
    consistency.id_retrieve(np.ones((1, 4)), ["z"], np.ones((2, 4)), ["a", "b"])
  with pytest.raises(ValueError, match="one label per descriptor"):
    consistency.id_retrieve(np.ones((2, 4)), ["a"], np.ones((2, 4)), ["a", "b"])
  with pytest.raises(ValueError, match="FD-dlib"):
    face_fd.fd_from_embeddings(np.ones((5, 64)), np.ones((5, 128)))
