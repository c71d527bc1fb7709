"""VICReg (Bardes, Ponce & LeCun 2022, arXiv:2105.04906): Variance-Invariance-Covariance
Regularisation, and the singular-value spectrum that shows dimensional collapse.

Three terms on the two views' embeddings z1, z2 (B, D), each with its job:

    invariance  s(z1, z2) = mean squared error between the views       (agree)
    variance    v(z) = mean_j max(0, gamma - sqrt(Var(z_j) + eps))     (do not collapse)
    covariance  c(z) = sum_{i != j} Cov(z)_ij^2 / D                    (do not repeat yourself)

    loss = 25 * s(z1, z2) + 25 * (v(z1) + v(z2)) + 1 * (c(z1) + c(z2))  (the paper's Algorithm 1)

Without the variance hinge every image can map to one point (complete collapse); without
the covariance term the dimensions can all carry the same signal (dimensional collapse,
Jing et al. 2022, arXiv:2110.09348). ``embedding_spectrum`` and ``byol.effective_rank``
measure the latter.

Shape legend: B batch, D width, C/H/W image.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import augment, validate
from .barlow_twins import BarlowTwinsProjectionHead, check_pair, off_diagonal
from .base import Method
from .byol import effective_rank

__all__ = ["VICReg", "VICRegExpander", "vicreg_loss", "vicreg_terms", "variance_term", "invariance_term",
           "covariance_term", "embedding_spectrum", "effective_rank"]


def _one_view(z, who: str) -> torch.Tensor:
    check_pair(z, z, who)
    return z.float()


def invariance_term(z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """s(z1, z2): the mean over all B * D entries of (z1 - z2)^2. z1, z2: (B, D)."""
    check_pair(z1, z2, "invariance_term")
    return F.mse_loss(z1.float(), z2.float())


def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """v(z) (arXiv:2105.04906, Eq. 1-2): mean_j relu(gamma - sqrt(Var_b(z_bj) + eps)).

    A hinge on each dimension's standard deviation (not its variance: the gradient of a
    hinge on the variance vanishes as the variance goes to 0, just where it is needed),
    with eps inside the square root (its gradient is infinite at 0 without it). The
    variance is the unbiased one, as in the paper's code. z: (B, D)."""
    z = _one_view(z, "variance_term")
    gamma = validate.number("gamma", gamma, example="1.0")
    eps = validate.number("eps", eps, example="1e-4")
    return F.relu(gamma - torch.sqrt(z.var(dim=0) + eps)).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """c(z) (arXiv:2105.04906, Eq. 3-4): the squared off-diagonal entries of the covariance
    matrix Cov(z) = (z - mean)^T (z - mean) / (B - 1), summed and divided by D. z: (B, D)."""
    z = _one_view(z, "covariance_term")
    B, D = z.shape
    zc = z - z.mean(dim=0)
    cov = zc.T @ zc / (B - 1)                                            # (D, D)
    return off_diagonal(cov).pow(2).sum() / D


def vicreg_terms(z1: torch.Tensor, z2: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> dict:
    """The three unweighted terms as 0-d tensors: ``invariance`` s(z1, z2), ``variance``
    v(z1) + v(z2) and ``covariance`` c(z1) + c(z2)."""
    check_pair(z1, z2, "vicreg_terms")
    return {"invariance": invariance_term(z1, z2),
            "variance": variance_term(z1, gamma, eps) + variance_term(z2, gamma, eps),
            "covariance": covariance_term(z1) + covariance_term(z2)}


def _coefficients(sim_coeff, std_coeff, cov_coeff) -> tuple[float, float, float]:
    """Each >= 0 and finite (0 switches a term off: the ablations), not all 0."""
    out = tuple(validate.number(name, value, low_ok=True, example="25, 25 and 1 (the paper)")
                for name, value in (("sim_coeff", sim_coeff), ("std_coeff", std_coeff), ("cov_coeff", cov_coeff)))
    if not any(out):
        raise ValueError("sim_coeff, std_coeff and cov_coeff are all 0: the loss would be 0 whatever the "
                         "network does; keep at least one term (the paper: 25, 25, 1)")
    return out


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg's loss (arXiv:2105.04906, Eq. 6 and Algorithm 1): sim_coeff * s(z1, z2) +
    std_coeff * (v(z1) + v(z2)) + cov_coeff * (c(z1) + c(z2)). z1, z2: (B, D).

    (The official code halves the variance term, v(z1)/2 + v(z2)/2, which is the same as
    std_coeff = 12.5 here; we follow the paper's Algorithm 1.)"""
    lam, mu, nu = _coefficients(sim_coeff, std_coeff, cov_coeff)
    t = vicreg_terms(z1, z2, gamma, eps)
    return lam * t["invariance"] + mu * t["variance"] + nu * t["covariance"]


# --------------------------------------------------------------------------------------
# dimensional collapse


def embedding_spectrum(z: torch.Tensor, center: bool = True) -> torch.Tensor:
    """The singular values of the embedding matrix z (B, D), largest first, divided by the
    largest (so the curve starts at 1), after centring along the batch (``center``): the
    spectrum Jing et al. plot (arXiv:2110.09348, Fig. 1). Values falling to ~0 after k
    indices mean that the embeddings fill only k dimensions: dimensional collapse.
    Returns (min(B, D),) float on the CPU; all zeros for a constant z."""
    z = _one_view(z, "embedding_spectrum").detach()
    if center:
        z = z - z.mean(dim=0)
    s = torch.linalg.svdvals(z).cpu()
    top = s[0].item() if len(s) else 0.0
    return s / top if top > 0 and math.isfinite(top) else torch.zeros_like(s)


# --------------------------------------------------------------------------------------
# the method


class VICRegExpander(BarlowTwinsProjectionHead):
    """VICReg's expander h (arXiv:2105.04906, Sec. 4.2): the Barlow Twins projector's shape,
    three Linear layers of width 8192, BatchNorm and ReLU after the first two."""


class VICReg(Method):
    """encoder f, expander h; loss = vicreg_loss(h(f(x1)), h(f(x2))) with the paper's
    25 / 25 / 1. A coefficient of 0 removes its term (the ablations of notebook 09).
    Logs the three unweighted terms."""

    def __init__(self, encoder: nn.Module, proj_hidden_dim: int = 8192, proj_dim: int = 8192,
                 sim_coeff: float = 25.0, std_coeff: float = 25.0, cov_coeff: float = 1.0, transform=None):
        super().__init__(encoder, transform or augment.simclr_augment())
        self.sim_coeff, self.std_coeff, self.cov_coeff = _coefficients(sim_coeff, std_coeff, cov_coeff)
        self.projection_head = VICRegExpander(encoder.num_features, proj_hidden_dim, proj_dim)

    def project(self, x):  # (B, C, H, W) -> z = h(f(x)), (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    def training_step(self, batch):
        x, _ = batch
        x1, x2 = self.views(x)
        z1, z2 = self.project(x1), self.project(x2)                # (B, proj_dim) each
        t = vicreg_terms(z1, z2)
        loss = self.sim_coeff * t["invariance"] + self.std_coeff * t["variance"] + self.cov_coeff * t["covariance"]
        return {"loss": loss, **{k: v.detach() for k, v in t.items()}}
