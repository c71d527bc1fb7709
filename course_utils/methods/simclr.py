"""SimCLR (Chen et al. 2020, arXiv:2002.05709): two augmented views, a projection head,
and the NT-Xent loss."""
from __future__ import annotations

import torch.nn as nn

from .. import augment
from ..losses import nt_xent_loss
from ..models import ProjectionHead


class SimCLR(nn.Module):
    """encoder f, projection head g; loss = NT-Xent(g(f(x1)), g(f(x2)))."""

    def __init__(self, encoder: nn.Module, transform=None, temperature: float = 0.5,
                 proj_hidden_dim: int = 512, proj_dim: int = 128):
        super().__init__()
        self.encoder = encoder
        self.projection_head = ProjectionHead(encoder.num_features, proj_hidden_dim, proj_dim)
        self.transform = transform or augment.simclr_augment()
        self.temperature = temperature

    def forward(self, x):  # (B, C, H, W) -> (B, proj_dim)
        return self.projection_head(self.encoder.forward_features(x))

    def training_step(self, x, y=None):
        x1, x2 = self.transform(x), self.transform(x)  # two independent views
        z1, z2 = self(x1), self(x2)
        return nt_xent_loss(z1, z2, self.temperature)
