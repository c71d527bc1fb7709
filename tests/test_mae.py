"""MAE: patchify/unpatchify against a slow loop and as inverses (any channel count),
random masking against a slow sort, the masked-only loss against a slow loop (with and
without normalised pixels), and the model: the encoder sees visible patches only. Also the
supervised fine-tuning that notebook 06 runs (``Supervised``): its logs and its save/load."""
import pytest
import torch

from course_utils import augment
from course_utils.methods.mae import (
    MAE,
    ReconstructionMonitor,
    encoder_cost,
    mae_loss,
    num_visible,
    patchify,
    random_masking,
    unpatchify,
)
from course_utils.models import SmallCNN, TinyViT, build_encoder


def _images(B=2, C=3, H=8, W=8, seed=0):
    return torch.rand(B, C, H, W, generator=torch.Generator().manual_seed(seed))


def slow_patchify(images, p):
    """One patch at a time, values in (row, column, channel) order."""
    B, C, H, W = images.shape
    out = []
    for b in range(B):
        patches = []
        for i in range(H // p):
            for j in range(W // p):
                patch = images[b, :, i * p:(i + 1) * p, j * p:(j + 1) * p]  # (C, p, p)
                patches.append([patch[c, r, s].item() for r in range(p) for s in range(p) for c in range(C)])
        out.append(patches)
    return torch.tensor(out)


# ------------------------------------------------------------------------------ patches

@pytest.mark.parametrize("C, H, W, p", [(3, 8, 8, 4), (1, 8, 8, 2), (5, 6, 6, 3), (3, 4, 8, 2)])
def test_patchify_matches_slow_loop(C, H, W, p):
    x = _images(C=C, H=H, W=W)
    torch.testing.assert_close(patchify(x, p), slow_patchify(x, p))


@pytest.mark.parametrize("C", [1, 2, 3, 7])
def test_unpatchify_inverts_patchify_any_channels(C):
    x = _images(C=C, H=12, W=12)
    torch.testing.assert_close(unpatchify(patchify(x, 4), 4), x, atol=0, rtol=0)
    P = torch.randn(2, 9, 16 * C)
    torch.testing.assert_close(patchify(unpatchify(P, 4), 4), P, atol=0, rtol=0)


def test_unpatchify_rectangular_needs_image_size():
    x = _images(H=4, W=8)
    torch.testing.assert_close(unpatchify(patchify(x, 2), 2, image_size=(4, 8)), x)
    with pytest.raises(ValueError, match="square"):
        unpatchify(patchify(_images(H=4, W=6), 2), 2)


def test_channel_first_patch_order_is_a_different_layout():
    x = _images()
    unfolded = torch.nn.functional.unfold(x, 4, stride=4).transpose(1, 2)  # (C, p, p) order
    assert unfolded.shape == patchify(x, 4).shape and not torch.equal(unfolded, patchify(x, 4))


@pytest.mark.parametrize("x, p, match", [
    (_images(H=10, W=10), 4, "not divisible by patch_size"),
    (_images(H=8, W=10), 4, "not divisible by patch_size"),
    (torch.rand(3, 8, 8), 4, r"\(B, C, H, W\)"),
    (_images(), 0, "patch_size"),
])
def test_patchify_bad_inputs(x, p, match):
    with pytest.raises(ValueError, match=match):
        patchify(x, p)


def test_unpatchify_bad_width():
    with pytest.raises(ValueError, match="p\\*p\\*C"):
        unpatchify(torch.randn(2, 4, 10), 4)


# ------------------------------------------------------------------------------ masking

def test_num_visible_and_float_trap():
    assert num_visible(64, 0.75) == 16
    assert num_visible(64, 0.0) == 64
    assert num_visible(10, 0.9) == 1  # int(10 * (1 - 0.9)) would be 0
    assert num_visible(10, 0.85) == 1


@pytest.mark.parametrize("ratio", [1.0, -0.1, 1.5])
def test_mask_ratio_outside_range(ratio):
    with pytest.raises(ValueError, match=r"mask_ratio must be a number in \[0, 1\)"):
        random_masking(torch.randn(2, 8, 3), ratio)


def test_mask_ratio_too_high_for_few_patches():
    with pytest.raises(ValueError, match="no visible patch"):
        random_masking(torch.randn(2, 4, 3), 0.9)


def slow_random_masking(x, ratio, noise):
    B, N, D = x.shape
    keep = num_visible(N, ratio)
    vis, mask, restore = [], [], []
    for b in range(B):
        order = sorted(range(N), key=lambda i: noise[b, i].item())  # ascending noise
        vis.append(torch.stack([x[b, i] for i in order[:keep]]))
        mask.append([0.0 if i in order[:keep] else 1.0 for i in range(N)])
        restore.append([order.index(i) for i in range(N)])
    return torch.stack(vis), torch.tensor(mask), torch.tensor(restore)


@pytest.mark.parametrize("N, D, ratio", [(16, 4, 0.75), (10, 3, 0.5), (9, 2, 0.0)])
def test_random_masking_matches_slow_sort(N, D, ratio):
    g = torch.Generator().manual_seed(N)
    x, noise = torch.randn(3, N, D, generator=g), torch.rand(3, N, generator=g)
    got = random_masking(x, ratio, noise)
    for a, b in zip(got, slow_random_masking(x, ratio, noise)):
        torch.testing.assert_close(a, b, check_dtype=False)


def test_random_masking_restores_order_and_counts():
    x = torch.arange(2 * 16 * 1, dtype=torch.float32).view(2, 16, 1)
    vis, mask, ids_restore = random_masking(x, 0.75)
    assert vis.shape == (2, 4, 1) and mask.shape == (2, 16) and ids_restore.shape == (2, 16)
    assert (mask.sum(1) == 12).all() and mask.device == x.device
    # the visible tokens plus placeholders, un-shuffled, put every kept token back in its place
    full = torch.cat([vis, torch.full((2, 12, 1), -1.0)], dim=1)
    restored = torch.gather(full, 1, ids_restore.unsqueeze(-1))
    keep = mask == 0
    assert torch.equal(restored[keep], x[keep]) and (restored[~keep] == -1).all()


def test_random_masking_draws_fresh_noise_and_checks_noise_shape():
    x = torch.randn(4, 32, 2)
    torch.manual_seed(0)
    a = random_masking(x, 0.5)[1]
    b = random_masking(x, 0.5)[1]
    assert not torch.equal(a, b)
    with pytest.raises(ValueError, match="noise"):
        random_masking(x, 0.5, noise=torch.rand(4, 31))


# ------------------------------------------------------------------------------ the loss

def slow_mae_loss(pred, images, mask, p, norm_pix):
    target = slow_patchify(images, p)
    total, count = 0.0, 0
    for b in range(pred.shape[0]):
        for n in range(pred.shape[1]):
            if mask[b, n] == 1:
                t = target[b, n].tolist()
                if norm_pix:
                    mu = sum(t) / len(t)
                    var = sum((v - mu) ** 2 for v in t) / (len(t) - 1)
                    t = [(v - mu) / (var + 1e-6) ** 0.5 for v in t]
                total += sum((a - c) ** 2 for a, c in zip(pred[b, n].tolist(), t)) / len(t)
                count += 1
    return total / count


@pytest.mark.parametrize("norm_pix", [False, True])
def test_mae_loss_matches_slow_loop(norm_pix):
    images = _images()
    g = torch.Generator().manual_seed(3)
    pred, mask = torch.randn(2, 4, 48, generator=g), (torch.rand(2, 4, generator=g) > 0.5).float()
    mask[0, 0] = 1
    expected = slow_mae_loss(pred, images, mask, 4, norm_pix)
    assert mae_loss(pred, images, mask, 4, norm_pix).item() == pytest.approx(expected, rel=1e-5)


def test_mae_loss_ignores_visible_patches_and_differs_from_all_patch_mean():
    images = _images()
    pred = patchify(images, 4).clone()
    mask = torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    assert mae_loss(pred, images, mask, 4).item() == 0.0          # perfect on masked patches
    pred[mask == 0] += 5.0                                        # wrong only where visible
    assert mae_loss(pred, images, mask, 4).item() == 0.0
    pred[mask == 1] += 1.0
    masked_only = mae_loss(pred, images, mask, 4).item()
    all_patches = ((pred - patchify(images, 4)) ** 2).mean().item()  # known wrong
    assert masked_only == pytest.approx(1.0) and abs(all_patches - masked_only) > 1


def test_mae_loss_bad_shapes():
    images = _images()
    with pytest.raises(ValueError, match="pred has shape"):
        mae_loss(torch.randn(2, 4, 47), images, torch.ones(2, 4), 4)
    with pytest.raises(ValueError, match="mask must have shape"):
        mae_loss(torch.randn(2, 4, 48), images, torch.ones(2, 5), 4)


# ----------------------------------------------------------------------------- the model

def _mae(**kw):
    torch.manual_seed(0)
    vit = TinyViT(image_size=16, patch_size=4, dim=16, depth=2, num_heads=2)
    return MAE(vit, decoder_dim=8, decoder_depth=1, decoder_heads=2, **kw)


def test_encoder_sees_only_visible_patches():
    mae = _mae(mask_ratio=0.75)
    seen = []
    mae.encoder.blocks[0].register_forward_hook(lambda m, i, o: seen.append(tuple(i[0].shape)))
    loss, pred, mask = mae.masked_forward(_images(B=3, H=16, W=16))
    assert seen == [(3, 4, 16)]                       # 16 patches, 4 visible
    assert pred.shape == (3, 16, 48) and mask.shape == (3, 16) and torch.isfinite(loss)
    seen.clear()
    features = mae(_images(B=3, H=16, W=16))   # the method's forward is the encoder's: all patches
    assert seen == [(3, 16, 16)] and features.shape == (3, 16)


def test_mae_backward_reaches_encoder_decoder_and_mask_token():
    mae = _mae(norm_pix_loss=True)
    mae.training_step((_images(B=4, H=16, W=16), None)).backward()
    assert mae.mask_token.grad.abs().sum() > 0
    assert mae.encoder.patch_embed.weight.grad.abs().sum() > 0


def test_mae_bad_arguments():
    with pytest.raises(ValueError, match="mask_ratio"):
        _mae(mask_ratio=1.0)
    with pytest.raises(ValueError, match="ViT encoder"):
        MAE(SmallCNN(width=4))


@pytest.mark.parametrize("norm_pix", [False, True])
def test_reconstruct_keeps_visible_patches(norm_pix):
    mae = _mae(norm_pix_loss=norm_pix).eval()
    x = _images(B=2, H=16, W=16)
    masked, recon, mask = mae.reconstruct(x, 0.5)
    keep = (mask == 0).unsqueeze(-1).expand(-1, -1, 48)
    torch.testing.assert_close(patchify(recon, 4)[keep], patchify(x, 4)[keep])
    torch.testing.assert_close(patchify(masked, 4)[keep], patchify(x, 4)[keep])
    assert (patchify(masked, 4)[~keep] == 0.5).all() and recon.min() >= 0 and recon.max() <= 1


def test_mae_trains_with_the_course_loop_and_monitor(tmp_path):
    from course_utils.train import train

    mae = _mae()
    data = (torch.randint(0, 256, (16, 3, 16, 16), dtype=torch.uint8), torch.zeros(16, dtype=torch.long))
    monitor = ReconstructionMonitor(_images(B=3, H=16, W=16))
    history = train(mae, data, epochs=2, batch_size=8, device="cpu", progress=False,
                    checkpoint=tmp_path / "mae.pt", eval_fn=monitor)
    assert len(monitor.snapshots) == 2 and monitor.snapshots[0][1].shape == (3, 3, 16, 16)
    assert history["eval"][-1]["masked_mse"] >= 0


def test_mae_saves_and_loads_with_its_fixed_positions(tmp_path):
    from course_utils.methods.base import load

    torch.manual_seed(0)
    vit = build_encoder("vit_tiny", image_size=16, patch_size=4, dim=16, depth=1, num_heads=2)
    mae = MAE(vit, decoder_dim=8, decoder_depth=1, decoder_heads=2, mask_ratio=0.5)
    mae.training_step((_images(B=4, H=16, W=16), None)).backward()
    mae.save(tmp_path / "mae.pt", knn=0.3)
    back = load(tmp_path / "mae.pt")
    assert back.mask_ratio == 0.5 and back.info == {"knn": 0.3} and not back.encoder.pos_embed.requires_grad
    x, noise = _images(B=2, H=16, W=16), torch.rand(2, 16)
    mae.eval()
    for a, b in zip(back.masked_forward(x, noise=noise), mae.masked_forward(x, noise=noise)):
        torch.testing.assert_close(a, b)
    features = mae.encoder.forward_features(x)
    torch.testing.assert_close(back.encoder.forward_features(x), features, atol=0, rtol=0)
    torch.testing.assert_close(back(x), features, atol=0, rtol=0)       # forward: the representation


def test_encoder_cost_drops_with_masking():
    vit = TinyViT(image_size=16, patch_size=4, dim=16, depth=2, num_heads=2)
    full, visible = encoder_cost(vit, 16, batch_size=4, repeats=1), encoder_cost(vit, 4, batch_size=4, repeats=1)
    # 4x fewer tokens: 4x less in the linear layers, 16x less in attention, so a bit more than 4x
    assert 4.05 < full["gflops"] / visible["gflops"] < 5


# --------------------------------------------------- fine-tuning (Supervised, as notebook 06 uses it)

def _supervised(num_classes=3):
    from course_utils.methods.supervised import Supervised

    torch.manual_seed(0)
    return Supervised(build_encoder("small_cnn", width=4), num_classes=num_classes)


def test_supervised_step_logs_the_batch_accuracy():
    model = _supervised()
    x, y = _images(B=6, H=16, W=16), torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(1)
    out = model.training_step((x, y))
    assert set(out) == {"loss", "train_accuracy"} and out["train_accuracy"].dim() == 0
    out["loss"].backward()
    assert model.classifier.weight.grad is not None and model.encoder.features[0][0].weight.grad is not None
    # the same augmented batch again: the log is the accuracy of the logits the loss was computed on
    torch.manual_seed(1)
    views = augment.random_horizontal_flip(augment.random_resized_crop(x, 16, scale=model.crop_scale))
    logits = model.classify(views)
    assert out["train_accuracy"].item() == pytest.approx((logits.argmax(1) == y).float().mean().item())
    torch.testing.assert_close(out["loss"], torch.nn.functional.cross_entropy(logits, y))
    assert model(x).shape == (6, model.encoder.num_features)       # forward: the representation
    with pytest.raises(ValueError, match="num_classes"):
        _supervised(num_classes=1)


def test_supervised_saves_and_loads_as_it_was(tmp_path):
    from course_utils.methods.base import load

    model = _supervised()
    model.training_step((_images(B=4, H=32, W=32), torch.tensor([0, 1, 2, 1])))["loss"].backward()
    model.save(tmp_path / "supervised_method.pt", method="Supervised", knn=0.5)
    back = load(tmp_path / "supervised_method.pt")
    assert type(back) is type(model) and back.config == model.config
    assert back.info == {"method": "Supervised", "knn": 0.5} and not back.training
    x = _images(B=3, H=32, W=32)
    model.eval()
    torch.testing.assert_close(back.encoder.forward_features(x), model.encoder.forward_features(x),
                               atol=0, rtol=0)
    torch.testing.assert_close(back.classify(x), model.classify(x), atol=0, rtol=0)


def test_classifier_accuracy_of_a_fine_tuned_vit_counts():
    from course_utils.methods.supervised import Supervised
    from course_utils.protocols import classifier_accuracy

    model = Supervised(TinyViT(image_size=16, patch_size=4, dim=16, depth=1, num_heads=2), num_classes=2).train()
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    labels = torch.tensor([0, 0, 0, 1])
    data = (torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8), labels)
    assert classifier_accuracy(model, data) == 0.75 and model.training   # mode given back


def test_plot_mae_history_labels():
    from course_utils.lessons.nb06 import plot_mae_history

    fig = plot_mae_history({"step_loss": [1.0, 0.5], "eval": [{"epoch": 1, "masked_mse": 0.1}]}, title="t")
    assert fig.axes[1].get_ylabel().startswith("mean squared error") and fig.axes[0].get_xlabel() == "step"


def test_sincos_positions_fixed_and_distinct():
    from course_utils.methods.mae import sincos_pos_embed_2d

    pe = sincos_pos_embed_2d(16, 4)
    assert pe.shape == (16, 16) and pe.abs().max() <= 1
    assert torch.cdist(pe, pe).add(torch.eye(16)).min() > 0.1  # every position different
    with pytest.raises(ValueError, match="divisible by 4"):
        sincos_pos_embed_2d(10, 4)
    mae = _mae()
    torch.testing.assert_close(mae.encoder.pos_embed[0], sincos_pos_embed_2d(16, 4))
    assert not mae.encoder.pos_embed.requires_grad and not mae.decoder_pos_embed.requires_grad
