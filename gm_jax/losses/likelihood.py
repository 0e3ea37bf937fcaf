"""Likelihood units shared by every family (DESIGN.md): nats per example and bits per dimension."""

from __future__ import annotations

import numpy as np


def bits_per_dim(nll_nats, num_dims: int):
    """bits/dim = NLL / (D ln 2), for an NLL in nats per example over D dimensions (works on arrays too)."""
    return nll_nats / (num_dims * np.log(2.0))


def uniform_nll_nats(num_levels: int, num_dims: int) -> float:
    """NLL of the uniform model over K levels per dimension, D log K: the baseline any model must beat."""
    return float(num_dims * np.log(num_levels))


def nll(log_probs, num_dims: int):
    """Mean negative log-likelihood of a batch: log_probs [B] in nats per example -> (mean NLL in nats, bits/dim)."""
    mean_nll = -log_probs.mean()
    return mean_nll, bits_per_dim(mean_nll, num_dims)
