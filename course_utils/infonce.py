"""Helpers for notebook 02: from NCE to InfoNCE, the mutual-information bound, temperature,
alignment and uniformity.

* toy problems whose mutual information is known in closed form (correlated Gaussians)
  and the optimal critic for them;
* the InfoNCE lower bound  I(x; y) >= log N - L_InfoNCE  (van den Oord et al. 2018,
  arXiv:1807.03748, Sec. 2.3; Poole et al. 2019, arXiv:1905.06922) and a small learned
  critic;
* how the temperature weights the negatives in the gradient (Wang & Liu 2021,
  arXiv:2012.09740), alignment and uniformity (Wang & Isola 2020, arXiv:2005.10242) and
  a toy encoder onto the circle to watch them;
* SimCLR's NT-Xent written as a slow loop from its Algorithm 1, and the common wrong
  versions of it, kept here so that tests can prove they differ.

Shape legend: N samples (or candidates), B batch, D width, K negatives.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .losses import _check_pair, _check_temperature, nce_loss, nt_xent_loss

# --------------------------------------------------------------------------------------
# toy problems with a known mutual information


def _check_rho(rho: float) -> None:
    if not -1 < rho < 1:
        raise ValueError(f"rho must be a correlation in (-1, 1), got {rho}")


def gaussian_mi(rho: float, dim: int = 1) -> float:
    """I(x; y) in nats for x ~ N(0, I_dim), y = rho x + sqrt(1 - rho^2) eps:
    dim independent pairs with correlation rho, each carrying -1/2 log(1 - rho^2)."""
    _check_rho(rho)
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    return -0.5 * dim * math.log(1 - rho ** 2)


def rho_for_mi(mi: float, dim: int = 1) -> float:
    """The correlation that gives mutual information ``mi`` nats in ``dim`` dimensions."""
    if mi < 0:
        raise ValueError(f"mi must be >= 0 nats, got {mi}")
    return math.sqrt(1 - math.exp(-2 * mi / dim))


def correlated_gaussians(n: int, dim: int, rho: float, generator: torch.Generator | None = None):
    """n pairs (x, y), each (n, dim): x ~ N(0, I), y = rho x + sqrt(1 - rho^2) eps."""
    _check_rho(rho)
    x = torch.randn(n, dim, generator=generator)
    y = rho * x + math.sqrt(1 - rho ** 2) * torch.randn(n, dim, generator=generator)
    return x, y


def gaussian_log_ratio(x: torch.Tensor, y: torch.Tensor, rho: float) -> torch.Tensor:
    """The optimal critic: scores[i, j] = log p(y_j | x_i) / p(y_j) for the correlated
    Gaussians. x: (N, D), y: (M, D) -> (N, M). Its mean on the diagonal is I(x; y)."""
    _check_rho(rho)
    D, s2 = x.shape[1], 1 - rho ** 2
    cond = -torch.cdist(rho * x, y).pow(2) / (2 * s2) - 0.5 * D * math.log(s2)  # log p(y|x) + D/2 log 2pi
    marg = -y.pow(2).sum(1) / 2                                                 # log p(y) + D/2 log 2pi
    return cond - marg[None, :]


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """log N - L_InfoNCE for a score matrix (N, N) with scores[i, j] = f(x_i, y_j) and the
    positives on the diagonal: a lower bound on I(x; y) (arXiv:1807.03748, Eq. 5), and
    never more than log N, whatever the critic."""
    if scores.dim() != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"scores must be a square matrix (N, N), got {tuple(scores.shape)}")
    N = scores.shape[0]
    targets = torch.arange(N, device=scores.device)
    return math.log(N) - F.cross_entropy(scores.float(), targets)


def optimal_critic_bound(mi: float, n_candidates: int, dim: int = 1, repeats: int = 20,
                         seed: int = 0) -> float:
    """The InfoNCE estimate of I(x; y) = ``mi`` nats with the optimal critic and N candidates,
    averaged over ``repeats`` batches of correlated Gaussians."""
    g = torch.Generator().manual_seed(seed)
    rho = rho_for_mi(mi, dim)
    estimates = []
    for _ in range(repeats):
        x, y = correlated_gaussians(n_candidates, dim, rho, g)
        estimates.append(infonce_bound(gaussian_log_ratio(x, y, rho)).item())
    return sum(estimates) / len(estimates)


class SeparableCritic(nn.Module):
    """f(x, y) = g(x) . h(y) with two small MLPs (Poole et al. 2019, arXiv:1905.06922):
    all N x N scores of a batch in one matrix product. x, y: (N, D) -> scores (N, N)."""

    def __init__(self, dim: int, hidden: int = 64, embed: int = 32):
        super().__init__()
        self.g = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, embed))
        self.h = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, embed))

    def forward(self, x, y):
        return self.g(x) @ self.h(y).T


def train_critic(mi: float, dim: int = 2, batch_size: int = 128, steps: int = 300, lr: float = 3e-3,
                 seed: int = 0) -> list[float]:
    """Train a SeparableCritic by minimising InfoNCE on fresh batches of correlated
    Gaussians with I = ``mi`` nats; returns the bound log N - L at every step."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    critic, rho = SeparableCritic(dim), rho_for_mi(mi, dim)
    opt = torch.optim.Adam(critic.parameters(), lr=lr)
    history = []
    for _ in range(steps):
        x, y = correlated_gaussians(batch_size, dim, rho, g)
        bound = infonce_bound(critic(x, y))
        opt.zero_grad()
        (-bound).backward()
        opt.step()
        history.append(bound.item())
    return history


# --------------------------------------------------------------------------------------
# NCE: data against noise, a logistic regression


def gaussian_log_pdf(x: torch.Tensor, mean: float, std: float) -> torch.Tensor:
    return -0.5 * ((x - mean) / std) ** 2 - math.log(std * math.sqrt(2 * math.pi))


def fit_nce_quadratic(data: torch.Tensor, noise: torch.Tensor, steps: int = 500, lr: float = 0.05):
    """Fit the logit G(x) = a x^2 + b x + c by NCE (``losses.nce_loss``) on 1-D samples.
    data: (B,), noise: (B, K). The log-ratio of two Gaussians is quadratic, so this family
    contains the optimum G*(x) = log p_data(x) - log(K p_noise(x)). Returns (a, b, c)."""
    coef = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([coef], lr=lr)

    def logit(x):
        return coef[0] * x ** 2 + coef[1] * x + coef[2]

    for _ in range(steps):
        loss = nce_loss(logit(data), logit(noise))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return tuple(coef.detach().tolist())


# --------------------------------------------------------------------------------------
# the temperature and the negatives


def negative_weights(pos_sim: float, neg_sims: torch.Tensor, temperature: float) -> torch.Tensor:
    """How hard each negative is pushed: dL/ds_j for the InfoNCE loss of one anchor with
    cosine similarity ``pos_sim`` to its positive and ``neg_sims`` (K,) to its negatives,
        L = -log( e^{s+/t} / (e^{s+/t} + sum_k e^{s_k/t}) ),   dL/ds_j = (1/t) softmax_j.
    Returns the K gradient weights (Wang & Liu 2021, arXiv:2012.09740, Eq. 4)."""
    _check_temperature(temperature)
    if neg_sims.dim() != 1:
        raise ValueError(f"neg_sims must have shape (K,), got {tuple(neg_sims.shape)}")
    logits = torch.cat([neg_sims.new_tensor([pos_sim]), neg_sims]) / temperature
    return logits.softmax(0)[1:] / temperature


def alignment(z1: torch.Tensor, z2: torch.Tensor, alpha: float = 2.0) -> torch.Tensor:
    """Alignment (Wang & Isola 2020, arXiv:2005.10242, Eq. 4): E ||f(x) - f(y)||^alpha over
    positive pairs, on L2-normalised embeddings. z1, z2: (B, D). 0 = views map together."""
    _check_pair(z1, z2, "alignment", min_batch=1)
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return (z1 - z2).norm(dim=1).pow(alpha).mean()


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """Uniformity (arXiv:2005.10242, Eq. 5): log E exp(-t ||f(x) - f(y)||^2) over all pairs
    of distinct samples, on L2-normalised embeddings. z: (N, D). Lower = more uniform;
    every point the same gives 0 (the maximum)."""
    if z.dim() != 2 or z.shape[0] < 2:
        raise ValueError(f"uniformity expects z of shape (N, D) with N >= 2, got {tuple(z.shape)}")
    z = F.normalize(z.float(), dim=1)
    return torch.pdist(z).pow(2).mul(-t).exp().mean().log()


# --------------------------------------------------------------------------------------
# a toy encoder onto the circle


def toy_clusters(n: int, num_classes: int = 6, dim: int = 8, seed: int = 0):
    """n points (n, dim) in ``num_classes`` Gaussian clusters with labels (n,)."""
    g = torch.Generator().manual_seed(seed)
    centres = 2.0 * torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(1234))
    labels = torch.randint(0, num_classes, (n,), generator=g)
    return centres[labels] + torch.randn(n, dim, generator=g), labels


def train_toy_encoder(temperature: float, steps: int = 300, batch_size: int = 128, noise: float = 0.5,
                      out_dim: int = 2, seed: int = 0) -> nn.Module:
    """An MLP from the toy clusters onto the unit circle (out_dim 2) trained with NT-Xent;
    a view is the point plus Gaussian noise of std ``noise``."""
    _check_temperature(temperature)
    torch.manual_seed(seed)
    x, _ = toy_clusters(4096, seed=seed)
    net = nn.Sequential(nn.Linear(x.shape[1], 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                        nn.Linear(64, out_dim))
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        batch = x[torch.randint(0, len(x), (batch_size,))]
        v1, v2 = batch + noise * torch.randn_like(batch), batch + noise * torch.randn_like(batch)
        loss = nt_xent_loss(net(v1), net(v2), temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


@torch.no_grad()
def embedding_report(net: nn.Module, n: int = 1000, noise: float = 0.5, seed: int = 1) -> dict:
    """Normalised embeddings of fresh toy points (n, out_dim), their labels, and the
    alignment (of two noisy views) and uniformity measured on them."""
    x, labels = toy_clusters(n, seed=seed)
    g = torch.Generator().manual_seed(seed)
    z = F.normalize(net(x), dim=1)
    z1 = net(x + noise * torch.randn(x.shape, generator=g))
    z2 = net(x + noise * torch.randn(x.shape, generator=g))
    return {"z": z, "labels": labels, "alignment": alignment(z1, z2).item(),
            "uniformity": uniformity(z).item()}


# --------------------------------------------------------------------------------------
# NT-Xent: the slow reference and the common wrong versions


def nt_xent_slow(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's Algorithm 1 (arXiv:2002.05709) as plain loops: s_ij = cosine / t,
    l(i, j) = -log exp(s_ij) / sum_{k != i} exp(s_ik), loss = mean of l(2k-1, 2k) + l(2k, 2k-1).
    Slow on purpose: the oracle that the fast versions are tested against."""
    _check_pair(z1, z2, "nt_xent_slow")
    _check_temperature(temperature)
    B = z1.shape[0]
    z = [t for pair in zip(z1, z2) for t in pair]      # interleaved: views of image k at 2k, 2k+1

    def s(i, j):
        return F.cosine_similarity(z[i], z[j], dim=0) / temperature

    def l(i, j):
        return -torch.log(torch.exp(s(i, j)) / sum(torch.exp(s(i, k)) for k in range(2 * B) if k != i))

    return sum(l(2 * k, 2 * k + 1) + l(2 * k + 1, 2 * k) for k in range(B)) / (2 * B)


def nt_xent_cross_view_only(z1, z2, temperature):
    """WRONG: only the other view's embeddings are candidates (B - 1 negatives, not 2B - 2)."""
    a, b = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    targets = torch.arange(len(a), device=a.device)
    return F.cross_entropy(a @ b.T / temperature, targets)


def nt_xent_positive_masked(z1, z2, temperature):
    """WRONG: the mask removes the positive pairs as well as the diagonal, so the
    positive's own term is missing from the denominator."""
    B = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / temperature
    pos = torch.cat([sim.diagonal(B), sim.diagonal(-B)])               # (2B,)
    eye = torch.eye(B, dtype=torch.bool, device=z.device)
    drop = torch.eye(2 * B, dtype=torch.bool, device=z.device) | eye.repeat(2, 2)
    return (torch.logsumexp(sim.masked_fill(drop, float("-inf")), dim=1) - pos).mean()


def nt_xent_config_batch(z1, z2, temperature, batch_size: int = 256):
    """WRONG on a short last batch: the loss is summed, then divided by 2 * the batch
    size from the configuration instead of the tensors' own 2B."""
    total = nt_xent_loss(z1, z2, temperature) * 2 * len(z1)
    return total / (2 * batch_size)


# --------------------------------------------------------------------------------------
# figures of notebook 02


def plot_bound_vs_mi(mis, candidates, dim: int = 4, repeats: int = 20):
    """InfoNCE estimates with the optimal critic against the true MI, one line per number
    of candidates N, with the ceiling log N dotted. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.plot(mis, mis, color="black", lw=1, label="truth: estimate = I")
    for n in candidates:
        line, = ax.plot(mis, [optimal_critic_bound(m, n, dim, repeats) for m in mis], marker="o", ms=3,
                        label=f"N = {n}")
        ax.axhline(math.log(n), color=line.get_color(), ls=":", lw=1)
    ax.set(xlabel="true mutual information I(x; y) (nats)", ylabel="log N - L_InfoNCE (nats)",
           title="The InfoNCE bound with the best possible critic (dotted: log N)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_circle(reports: dict, title: str = "Toy embeddings on the unit circle"):
    """One panel per run: the embeddings (N, 2) on the circle, coloured by cluster.
    ``reports``: {panel title: ``embedding_report`` output}."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(reports), figsize=(2.9 * len(reports), 3.2), squeeze=False)
    for ax, (name, r) in zip(axes[0], reports.items()):
        z = r["z"] + 0.04 * torch.randn(r["z"].shape, generator=torch.Generator().manual_seed(0))  # jitter
        ax.scatter(z[:, 0], z[:, 1], c=r["labels"], cmap="tab10", s=4, alpha=0.5)
        ax.set(xlim=(-1.3, 1.3), ylim=(-1.3, 1.3), aspect="equal", xlabel="z[0]", ylabel="z[1]",
               title=f"{name}\nalign {r['alignment']:.2f}  unif {r['uniformity']:.2f}")
        ax.title.set_fontsize(9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
