"""Masked autoencoders (He et al. 2021, arXiv:2111.06377), built on ``models.TinyViT``.

Cut the image into patches, hide most of them (75%), let a ViT encoder see only the
visible ones, and train a light decoder to paint the hidden ones back. The stages follow
facebookresearch/mae ``models_mae.py``: ``patchify`` / ``unpatchify``, ``random_masking``,
``forward_encoder``, ``forward_decoder``, ``forward_loss`` (the paper's code calls the
three in its ``forward``; here ``MAE.masked_forward`` does, since a method's ``forward`` is
the representation that evaluation uses).

Shape legend: B batch, N patches, D width, C/H/W image, p patch size.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .. import augment, validate
from ..models import TinyViT, TransformerBlock, eval_mode, vit_init
from .base import Method

# --------------------------------------------------------------------------------------
# patches


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """Images (B, C, H, W) -> patches (B, N, p*p*C), N = (H/p) * (W/p), row by row.

    Inside a patch the values run over (row, column, channel), as in facebookresearch/mae,
    for any number of channels C."""
    if images.dim() != 4:
        raise ValueError(f"patchify expects images of shape (B, C, H, W), got {tuple(images.shape)}")
    if not isinstance(patch_size, int) or patch_size < 1:
        raise ValueError(f"patch_size must be a positive int, got {patch_size!r}")
    B, C, H, W = images.shape
    if H % patch_size or W % patch_size:
        raise ValueError(f"image size {H}x{W} is not divisible by patch_size={patch_size}")
    h, w, p = H // patch_size, W // patch_size, patch_size
    x = images.reshape(B, C, h, p, w, p)
    x = torch.einsum("bchpwq->bhwpqc", x)            # (B, h, w, p, p, C)
    return x.reshape(B, h * w, p * p * C)


def unpatchify(patches: torch.Tensor, patch_size: int, image_size=None) -> torch.Tensor:
    """Patches (B, N, p*p*C) -> images (B, C, H, W); the inverse of :func:`patchify`.

    C is read from the patch width; ``image_size`` (H, W) or an int, default square."""
    if patches.dim() != 3:
        raise ValueError(f"unpatchify expects patches of shape (B, N, p*p*C), got {tuple(patches.shape)}")
    B, N, L = patches.shape
    p = patch_size
    if not isinstance(p, int) or p < 1 or L % (p * p):
        raise ValueError(f"patch width {L} is not p*p*C for patch_size={patch_size!r}")
    C = L // (p * p)
    if image_size is None:
        h = w = math.isqrt(N)
        if h * w != N:
            raise ValueError(f"{N} patches do not form a square grid; pass image_size=(H, W)")
    else:
        H, W = (image_size, image_size) if isinstance(image_size, int) else image_size
        if H % p or W % p or (H // p) * (W // p) != N:
            raise ValueError(f"image_size {image_size} with patch_size {p} does not give {N} patches")
        h, w = H // p, W // p
    x = patches.reshape(B, h, w, p, p, C)
    x = torch.einsum("bhwpqc->bchpwq", x)            # (B, C, h, p, w, p)
    return x.reshape(B, C, h * p, w * p)


# --------------------------------------------------------------------------------------
# masking


def num_visible(num_patches: int, mask_ratio: float) -> int:
    """How many of N patches stay visible: floor(N * (1 - mask_ratio)), computed so that
    float rounding cannot lose one (10 * (1 - 0.9) is 0.9999999999999998 in floats)."""
    if isinstance(mask_ratio, (str, bytes, bool)) or not isinstance(mask_ratio, (int, float)) \
            or not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be a number in [0, 1) (the share of patches hidden, e.g. 0.75), "
                         f"got {mask_ratio!r}")
    keep = int(num_patches * (1 - mask_ratio) + 1e-6)
    if keep < 1:
        raise ValueError(f"mask_ratio={mask_ratio} leaves no visible patch out of {num_patches}; "
                         "lower it")
    return keep


def random_masking(x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None = None):
    """Keep a random subset of tokens per sample, by sorting random noise
    (facebookresearch/mae ``random_masking``, arXiv:2111.06377, Sec. 3).

    x: (B, N, D) tokens; noise: optional (B, N) (drawn uniformly on x.device if None).
    Returns
      x_visible   (B, N_keep, D): the kept tokens, in shuffled order;
      mask        (B, N): 0 keep, 1 remove, in the original patch order;
      ids_restore (B, N): ``argsort`` of the shuffle, to put tokens back in order.
    """
    if x.dim() != 3:
        raise ValueError(f"random_masking expects tokens of shape (B, N, D), got {tuple(x.shape)}")
    B, N, D = x.shape
    keep = num_visible(N, mask_ratio)
    if noise is None:
        noise = torch.rand(B, N, device=x.device)
    elif noise.shape != (B, N):
        raise ValueError(f"noise must have shape (B, N) = {(B, N)}, got {tuple(noise.shape)}")
    ids_shuffle = torch.argsort(noise.to(x.device), dim=1)     # ascend: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)
    ids_keep = ids_shuffle[:, :keep]                             # (B, N_keep)
    x_visible = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, D))
    mask = torch.ones(B, N, device=x.device)
    mask[:, :keep] = 0
    mask = torch.gather(mask, 1, ids_restore)                    # back to patch order
    return x_visible, mask, ids_restore


# --------------------------------------------------------------------------------------
# the loss


def mae_loss(pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, patch_size: int,
             norm_pix_loss: bool = False) -> torch.Tensor:
    """Mean squared error on the *masked* patches only (arXiv:2111.06377, Sec. 3).

    pred: (B, N, p*p*C) predicted patches; images: (B, C, H, W) the originals in [0, 1];
    mask: (B, N), 1 for a masked patch. With ``norm_pix_loss`` each target patch is
    normalised by its own mean and variance (the paper's Table 1d), so the model predicts
    the local pattern and not the patch's brightness.
    """
    if not images.is_floating_point():
        raise ValueError(f"mae_loss expects the images as floats in [0, 1], got dtype {images.dtype} (0..255 "
                         "targets against predictions in [0, 1]); pass images.float() / 255")
    target = patchify(images, patch_size)                          # (B, N, p*p*C)
    if pred.shape != target.shape:
        raise ValueError(f"pred has shape {tuple(pred.shape)}, the patches of the images "
                         f"{tuple(target.shape)}")
    if mask.shape != pred.shape[:2]:
        raise ValueError(f"mask must have shape (B, N) = {tuple(pred.shape[:2])}, got {tuple(mask.shape)}")
    if norm_pix_loss:
        target = normalize_patches(target)
    per_patch = ((pred.float() - target.float()) ** 2).mean(dim=-1)   # (B, N)
    return (per_patch * mask).sum() / mask.sum().clamp(min=1)


def normalize_patches(patches: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Each patch (B, N, L) minus its mean, over sqrt(its variance + eps), as MAE does."""
    mean = patches.mean(dim=-1, keepdim=True)
    var = patches.var(dim=-1, keepdim=True)
    return (patches - mean) / (var + eps) ** 0.5


# --------------------------------------------------------------------------------------
# the model


def sincos_pos_embed_2d(dim: int, grid_size: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position embeddings (N = grid_size**2, dim), as MAE uses
    (facebookresearch/mae ``get_2d_sincos_pos_embed``): half the width encodes the row,
    half the column, each with sines and cosines of geometrically spaced frequencies."""
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4 for 2-D sine-cosine embeddings, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))  # (dim/4,)
    coords = torch.arange(grid_size, dtype=torch.float64)
    rows, cols = torch.meshgrid(coords, coords, indexing="ij")

    def encode(pos):  # (N,) -> (N, dim/2)
        angles = pos.flatten()[:, None] * omega[None, :]
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)

    return torch.cat([encode(cols), encode(rows)], dim=1).float()  # (N, dim)


class MAE(Method):
    """Masked autoencoder around a ``TinyViT`` encoder (arXiv:2111.06377, Fig. 1).

    forward_encoder: embed all patches, keep a random (1 - mask_ratio) of them, run the
                     encoder's blocks on the visible tokens only;
    forward_decoder: project to the decoder width, put a shared learned mask token in every
                     hidden place, add decoder positions, a few blocks, predict p*p*C values;
    forward_loss:    MSE on the masked patches (optionally normalised pixels);
    masked_forward:  the three in a row -> (loss, pred, mask).

    ``encoder`` is kept whole, so after pre-training ``mae.encoder`` is an ordinary
    TinyViT whose ``forward_features`` sees all patches; ``mae(x)`` is that representation,
    as for every method. Its position embeddings are set to fixed 2-D sine-cosine values
    (and frozen), as in the paper's code. Build the encoder with
    ``models.build_encoder("vit_tiny", ...)`` so that ``methods.base.load`` can rebuild a
    saved MAE.
    """

    def __init__(self, encoder: TinyViT, decoder_dim: int = 64, decoder_depth: int = 2,
                 decoder_heads: int = 4, mask_ratio: float = 0.75, norm_pix_loss: bool = False,
                 crop_scale=(0.2, 1.0)):
        super().__init__(encoder)
        if not hasattr(encoder, "embed") or not hasattr(encoder, "forward_tokens"):
            raise ValueError("MAE needs a ViT encoder with embed(x) and forward_tokens(tokens), "
                             f"e.g. models.TinyViT; got {type(encoder).__name__}")
        num_visible(encoder.num_patches, mask_ratio)  # validates mask_ratio
        validate.integer("decoder_dim", decoder_dim, example="64")
        validate.integer("decoder_depth", decoder_depth, example="2 blocks")
        validate.integer("decoder_heads", decoder_heads, example="4")
        if decoder_dim % decoder_heads:
            raise ValueError(f"decoder_dim={decoder_dim} must be a multiple of decoder_heads={decoder_heads} "
                             "(each head gets decoder_dim // decoder_heads channels), e.g. 64 and 4")
        self.mask_ratio, self.norm_pix_loss = mask_ratio, norm_pix_loss
        self.patch_size, self.crop_scale = encoder.patch_size, tuple(crop_scale)
        n, d, p, c = encoder.num_patches, encoder.num_features, encoder.patch_size, encoder.in_channels
        # fixed sine-cosine positions in encoder and decoder, as in the paper's code: the
        # model knows where every patch is from the first step
        grid = math.isqrt(n)
        with torch.no_grad():
            encoder.pos_embed.copy_(sincos_pos_embed_2d(d, grid).unsqueeze(0))
        encoder.pos_embed.requires_grad_(False)
        self.decoder_embed = nn.Linear(d, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.decoder_pos_embed = nn.Parameter(sincos_pos_embed_2d(decoder_dim, grid).unsqueeze(0),
                                              requires_grad=False)
        self.decoder_blocks = nn.ModuleList(TransformerBlock(decoder_dim, decoder_heads)
                                            for _ in range(decoder_depth))
        vit_init(self.decoder_blocks)     # the encoder's attention initialisation, in the decoder too
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, p * p * c)

    def forward_encoder(self, images, mask_ratio: float, noise=None):
        """(B, C, H, W) -> latent (B, N_keep, D), mask (B, N), ids_restore (B, N)."""
        tokens = self.encoder.embed(images)                          # (B, N, D), positions added
        visible, mask, ids_restore = random_masking(tokens, mask_ratio, noise)
        return self.encoder.forward_tokens(visible), mask, ids_restore

    def forward_decoder(self, latent, ids_restore):
        """latent (B, N_keep, D), ids_restore (B, N) -> predicted patches (B, N, p*p*C)."""
        x = self.decoder_embed(latent)                               # (B, N_keep, Dd)
        B, keep, Dd = x.shape
        N = ids_restore.shape[1]
        x = torch.cat([x, self.mask_token.to(x.dtype).expand(B, N - keep, Dd)], dim=1)  # (B, N, Dd)
        x = torch.gather(x, 1, ids_restore.unsqueeze(-1).expand(-1, -1, Dd))  # patch order
        x = x + self.decoder_pos_embed
        for block in self.decoder_blocks:
            x = block(x)
        return self.decoder_pred(self.decoder_norm(x))

    def forward_loss(self, images, pred, mask):
        return mae_loss(pred, images, mask, self.patch_size, self.norm_pix_loss)

    def masked_forward(self, images, mask_ratio: float | None = None, noise=None):
        """Mask, encode, decode: -> (loss, pred (B, N, p*p*C), mask (B, N))."""
        ratio = self.mask_ratio if mask_ratio is None else mask_ratio
        latent, mask, ids_restore = self.forward_encoder(images, ratio, noise)
        pred = self.forward_decoder(latent, ids_restore)
        return self.forward_loss(images, pred, mask), pred, mask

    def training_step(self, batch):
        x, _ = batch
        # MAE's augmentation is light: a random resized crop and a flip (Sec. A.1)
        x = augment.random_resized_crop(x, x.shape[-1], scale=self.crop_scale, flip_p=0.5)
        return self.masked_forward(x)[0]

    @torch.no_grad()
    def reconstruct(self, images, mask_ratio: float | None = None, noise=None):
        """For display: masked images and reconstructions (B, C, H, W) in [0, 1], and the
        mask (B, N), 1 for a hidden patch.

        Visible patches are pasted from the original; masked ones come from the decoder.
        With ``norm_pix_loss`` the model predicts normalised patches, so they are shown
        with the true patch's mean and std put back (that part is not predicted)."""
        _, pred, mask = self.masked_forward(images, mask_ratio, noise)
        target = patchify(images, self.patch_size)
        if self.norm_pix_loss:
            mean, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True)
            pred = pred * (var + 1e-6) ** 0.5 + mean
        m = mask.unsqueeze(-1)                                        # (B, N, 1)
        masked = unpatchify(target * (1 - m) + 0.5 * m, self.patch_size, images.shape[-2:])
        recon = unpatchify(target * (1 - m) + pred.float() * m, self.patch_size, images.shape[-2:])
        return masked.clamp(0, 1), recon.clamp(0, 1), mask


# --------------------------------------------------------------------------------------
# watching and measuring


def fixed_noise(num_images: int, num_patches: int, seed: int = 0, device=None) -> torch.Tensor:
    """Masking noise (B, N) from a seed: the same masks at every snapshot."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(num_images, num_patches, generator=g).to(device or "cpu")


class ReconstructionMonitor:
    """An ``eval_fn`` for ``train``: the masked-patch MSE in pixels of the displayed
    reconstructions of fixed images under fixed masks (``masked_mse``), and a snapshot of
    them at every evaluation, appended to ``self.snapshots`` as (masked, reconstructed).
    Snapshot i belongs to the i-th of the last ``len(snapshots)`` entries of
    ``history["eval"]`` (a run loaded from a finished checkpoint takes none)."""

    def __init__(self, images: torch.Tensor, mask_ratio: float = 0.75, seed: int = 0):
        self.images, self.mask_ratio, self.seed = images, mask_ratio, seed
        self.snapshots = []

    def __call__(self, method: MAE) -> dict:
        with eval_mode(method):
            x = self.images.to(next(method.parameters()).device)
            noise = fixed_noise(len(x), method.encoder.num_patches, self.seed, x.device)
            masked, recon, mask = method.reconstruct(x, self.mask_ratio, noise)
        self.snapshots.append((masked.cpu(), recon.cpu()))
        pixels = mae_loss(patchify(recon, method.patch_size), x, mask, method.patch_size)
        return {"masked_mse": pixels.item()}


def _math_attention():
    """Force the plain attention kernel (torch >= 2.3); older torch counts what it can."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch < 2.3
        import contextlib
        return contextlib.nullcontext()
    return sdpa_kernel(SDPBackend.MATH)


def encoder_cost(encoder: TinyViT, num_tokens: int, batch_size: int = 64, repeats: int = 3) -> dict:
    """FLOPs (counted by ``torch.utils.flop_counter``) and measured seconds of one forward
    and backward pass of the encoder's blocks on ``num_tokens`` tokens per image."""
    from torch.utils.flop_counter import FlopCounterMode

    from ..runtime import Timer

    device = next(encoder.parameters()).device
    tokens = torch.randn(batch_size, num_tokens, encoder.num_features, device=device)
    # the counter sees attention's matrix products only in the plain (math) kernel; the
    # fused CPU kernel would hide them and the count would miss attention's N^2 part
    with _math_attention(), FlopCounterMode(display=False) as counter:
        encoder.forward_tokens(tokens).sum().backward()
    times = []
    for _ in range(repeats):
        with Timer() as t:
            encoder.forward_tokens(tokens).sum().backward()
        times.append(t.seconds)
    encoder.zero_grad(set_to_none=True)
    return {"tokens": num_tokens, "gflops": counter.get_total_flops() / 1e9, "seconds": min(times)}
