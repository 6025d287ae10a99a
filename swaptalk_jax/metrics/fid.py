"""FID: feature statistics accumulated in float64 over batches, and the Frechet distance of two.

The statistics merge batch by batch (Chan et al.'s pairwise update of mean and centred scatter), so
large feature means do not cost precision the way a raw sum of outer products would. Covariance is
normalised by n - 1 like `np.cov`, matching pytorch-fid. Stats files are `.npz` with `mu` and
`sigma`, the format pytorch-fid writes, so its precomputed reference statistics load as-is.
"""
import dataclasses
import os
from typing import Any, Callable, Iterable, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg

from swaptalk_jax.models import inception


@dataclasses.dataclass
class FeatureStats:
  """Running count, mean and centred scatter matrix of feature vectors, all float64."""
  dim: int
  count: int = 0
  mean: Optional[np.ndarray] = None
  scatter: Optional[np.ndarray] = None

  def __post_init__(self):
    if self.mean is None:
      self.mean = np.zeros(self.dim, np.float64)
    if self.scatter is None:
      self.scatter = np.zeros((self.dim, self.dim), np.float64)

  def update(self, features) -> "FeatureStats":
    """Adds a (batch, dim) block of features; returns self."""
    batch = np.asarray(features, np.float64)
    if batch.ndim != 2 or batch.shape[1] != self.dim:
      raise ValueError(f"expected features of shape (batch, {self.dim}), got {batch.shape}")
    n_b = batch.shape[0]
    if n_b == 0:
      return self
    mean_b = batch.mean(axis=0)
    centred = batch - mean_b
    scatter_b = centred.T @ centred
    total = self.count + n_b
    delta = mean_b - self.mean
    self.scatter += scatter_b + np.outer(delta, delta) * (self.count * n_b / total)
    self.mean += delta * (n_b / total)
    self.count = total
    return self

  def mean_and_covariance(self) -> Tuple[np.ndarray, np.ndarray]:
    """(mu, sigma) with sigma normalised by n - 1; needs at least two samples."""
    if self.count < 2:
      raise ValueError(f"FID statistics need at least 2 feature vectors, got {self.count}")
    return self.mean.copy(), self.scatter / (self.count - 1)


def statistics_of(features: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """(mu, sigma) of an (n, dim) feature matrix in one go."""
  features = np.asarray(features)
  return FeatureStats(features.shape[1]).update(features).mean_and_covariance()


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6,
                     imag_atol: float = 1e-3) -> float:
  """||mu1 - mu2||^2 + tr(s1 + s2 - 2 sqrt(s1 s2)) in float64.

  If the product's square root is not finite (singular product), eps is added to both diagonals and
  it is retried. Tiny imaginary parts from sqrtm's rounding are dropped; a diagonal imaginary part
  above `imag_atol` means the input is broken and raises.
  """
  mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
  sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
  sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
  if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
    raise ValueError(f"mismatched statistics: mu {mu1.shape} vs {mu2.shape}, "
                     f"sigma {sigma1.shape} vs {sigma2.shape}")
  diff = mu1 - mu2
  covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
  if not np.isfinite(covmean).all():
    offset = np.eye(sigma1.shape[0]) * eps
    covmean = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
  if np.iscomplexobj(covmean):
    largest = np.max(np.abs(np.diagonal(covmean).imag))
    if largest > imag_atol:
      raise ValueError(f"sqrtm of the covariance product has imaginary component {largest:.3g}")
    covmean = covmean.real
  return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def inception_embedder(variables: Any, dtype=jnp.float32) -> Callable[[np.ndarray], np.ndarray]:
  """Jitted images (N, H, W, 3) in [0, 1] -> (N, 2048) features, over converted variables."""
  model = inception.FIDInceptionV3(dtype=dtype)
  apply = jax.jit(model.apply)
  return lambda images: np.asarray(apply(variables, images))


def statistics_from_batches(embed: Callable[[np.ndarray], np.ndarray],
                            batches: Iterable[np.ndarray],
                            dim: int = 2048) -> Tuple[np.ndarray, np.ndarray]:
  """Streams image batches through `embed` (e.g. a jitted FIDInceptionV3 apply) into (mu, sigma)."""
  stats = FeatureStats(dim)
  for batch in batches:
    stats.update(np.asarray(embed(batch)))
  return stats.mean_and_covariance()


def save_statistics(path: str, mu: np.ndarray, sigma: np.ndarray) -> None:
  """Writes pytorch-fid's stats format: an .npz with `mu` and `sigma`."""
  np.savez(path, mu=mu, sigma=sigma)


def load_statistics(path: str) -> Tuple[np.ndarray, np.ndarray]:
  """Reads an .npz with `mu` and `sigma` (ours or pytorch-fid's precomputed reference stats)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"FID statistics file {path} does not exist")
  with np.load(path) as data:
    missing = {"mu", "sigma"} - set(data.files)
    if missing:
      raise ValueError(f"FID statistics file {path} lacks {sorted(missing)}; has {data.files}")
    return data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
