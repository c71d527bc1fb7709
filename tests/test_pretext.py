import itertools
import math

import pytest
import torch

from course_utils import models
from course_utils.lessons import nb01
from course_utils.methods import colourisation as C
from course_utils.methods import pretext as P


def _coords(B=2, size=32):
    """Images whose channel 0 holds the row index and channel 1 the column index."""
    r = torch.arange(size, dtype=torch.float32)
    x = torch.zeros(B, 3, size, size)
    x[:, 0] = r.view(-1, 1)
    x[:, 1] = r.view(1, -1)
    x[:, 2] = torch.arange(B, dtype=torch.float32).view(-1, 1, 1)
    return x


# ---------------------------------------------------------------- rotation

def test_rotate_batch_blocks_and_labels():
    x = torch.rand(3, 2, 5, 5)
    images, labels = P.rotate_batch(x)
    assert images.shape == (12, 2, 5, 5) and labels.tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3
    for r in range(4):
        torch.testing.assert_close(images[3 * r:3 * r + 3], torch.rot90(x, r, dims=(2, 3)))


def test_rotate_batch_turns_counter_clockwise():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1  # top-left marker
    images, _ = P.rotate_batch(x)
    # 90 degrees counter-clockwise: top-left goes to bottom-left, 180: bottom-right, 270: top-right
    assert images[1, 0, 3, 0] == 1 and images[2, 0, 3, 3] == 1 and images[3, 0, 0, 3] == 1
    # four quarter turns come back to the start
    torch.testing.assert_close(torch.rot90(images[3:], 1, dims=(2, 3)), x)


@pytest.mark.parametrize("bad", [torch.rand(2, 3, 4, 5), torch.rand(3, 4, 4),
                                 torch.zeros(2, 3, 4, 4, dtype=torch.uint8)])
def test_rotate_batch_rejects_bad_inputs(bad):
    with pytest.raises(ValueError, match="rotate_batch"):
        P.rotate_batch(bad)


def test_rotation_method_trains_and_scores():
    torch.manual_seed(0)
    m = P.RotationPrediction(models.SmallCNN(width=4), hidden_dim=16)
    x = torch.rand(5, 3, 16, 16)
    logits, targets = m.pretext_logits(x)
    assert logits.shape == (20, 4) and targets.shape == (20,)
    out = m.training_step((x, None))
    loss = out["loss"]
    loss.backward()
    assert torch.isfinite(loss) and all(p.grad is not None for p in m.parameters())
    acc = P.pretext_accuracy(m, (x * 255).to(torch.uint8))
    assert 0 <= acc <= 1 and m.training  # mode restored
    # the logged accuracy is the batch's: how often the logits' argmax is the target
    torch.manual_seed(3)
    logits, targets = m.pretext_logits(x)
    torch.manual_seed(3)
    assert m.training_step((x, None))["pretext_accuracy"].item() == pytest.approx(
        sum(int(a == b) for a, b in zip(logits.argmax(1).tolist(), targets.tolist())) / len(targets))


# ---------------------------------------------------------------- tiles

def test_tile_layout_values_and_bad_inputs():
    assert P.tile_layout(32, 3) == (10, 10, 1)
    assert P.tile_layout(32, 3, 7) == (10, 7, 1)
    assert P.tile_layout(64, 4, 12) == (16, 12, 0)
    for kwargs in [dict(grid=1), dict(grid=3, tile_size=11), dict(grid=3, tile_size=0), dict(grid=2.5)]:
        with pytest.raises(ValueError):
            P.tile_layout(32, **kwargs)
    with pytest.raises(ValueError, match="too small"):
        P.tile_layout(2, 3)


def test_tiles_without_gaps_cover_the_grid_exactly():
    x = torch.rand(2, 3, 32, 32)
    tiles = P.extract_tiles(x, 3, None, jitter=True)   # no gap: jitter has no room
    assert tiles.shape == (2, 9, 3, 10, 10)
    torch.testing.assert_close(nb01.tiles_to_image(tiles, gap=0), x[:, :, 1:31, 1:31])


def test_tiles_with_gaps_lie_in_their_cells_and_jitter():
    x = _coords(B=4)
    g = torch.Generator().manual_seed(0)
    tiles = P.extract_tiles(x, 3, 7, jitter=True, generator=g)
    top, left = tiles[:, :, 0, 0, 0], tiles[:, :, 1, 0, 0]          # (B, T) coordinates of each tile's corner
    k = torch.arange(9)
    cell_top, cell_left = 1 + (k // 3) * 10, 1 + (k % 3) * 10
    assert ((top >= cell_top) & (top <= cell_top + 3)).all()
    assert ((left >= cell_left) & (left <= cell_left + 3)).all()
    assert len(set(top.flatten().tolist())) > 9                       # offsets differ between tiles/images
    # inside a tile, rows and columns are contiguous
    torch.testing.assert_close(tiles[:, :, 0, :, 0] - top.unsqueeze(-1), torch.arange(7.).expand(4, 9, 7))
    # the same generator seed gives the same tiles; without jitter they are centred
    again = P.extract_tiles(x, 3, 7, jitter=True, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again, tiles)
    fixed = P.extract_tiles(x, 3, 7, jitter=False)
    assert (fixed[:, :, 0, 0, 0] == cell_top + 1).all()


def test_extract_tiles_rejects_bad_inputs():
    with pytest.raises(ValueError, match="square"):
        P.extract_tiles(torch.rand(2, 3, 32, 30))
    with pytest.raises(ValueError, match="tile_size"):
        P.extract_tiles(torch.rand(2, 3, 32, 32), tile_size=12)


def test_normalize_tiles_removes_mean_colour_and_contrast():
    t = torch.rand(2, 9, 3, 7, 7) * 0.3
    shifted = t + torch.tensor([0.5, 0.1, 0.3]).view(1, 1, 3, 1, 1)  # another mean colour
    torch.testing.assert_close(P.normalize_tiles(t), P.normalize_tiles(shifted))
    torch.testing.assert_close(P.normalize_tiles(t, eps=1e-6), P.normalize_tiles(0.5 * t, eps=1e-6),
                               atol=1e-4, rtol=0)
    flat = P.normalize_tiles(torch.full((1, 3, 4, 4), 0.9))
    torch.testing.assert_close(flat, torch.full_like(flat, 0.5))      # a flat tile becomes grey
    with pytest.raises(ValueError):
        P.normalize_tiles(torch.rand(4, 4))


def test_tiles_to_image_layout():
    tiles = torch.arange(4.).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
    img = nb01.tiles_to_image(tiles, gap=1, fill=-1.0)
    assert img.shape == (1, 1, 5, 5)
    assert img[0, 0, 0, 0] == 0 and img[0, 0, 0, 3] == 1 and img[0, 0, 3, 0] == 2 and img[0, 0, 4, 4] == 3
    assert (img[0, 0, 2] == -1).all()
    with pytest.raises(ValueError, match="square"):
        nb01.tiles_to_image(torch.rand(1, 3, 1, 2, 2))


# ---------------------------------------------------------------- permutations

def test_all_permutations_and_hamming():
    p = P.all_permutations(4)
    assert p.shape == (24, 4) and len({tuple(r) for r in p.tolist()}) == 24
    assert p[0].tolist() == [0, 1, 2, 3]
    a = torch.tensor([[0, 1, 2, 3], [1, 0, 2, 3]])
    assert P.hamming_distance(a, a).tolist() == [[0, 2], [2, 0]]
    with pytest.raises(ValueError):
        P.all_permutations(0)
    with pytest.raises(ValueError):
        P.hamming_distance(a, torch.zeros(2, 3, dtype=torch.long))


def _slow_max_min(candidates, first, n):
    """The greedy max-min selection written as plain loops."""
    chosen = [first]
    while len(chosen) < n:
        best, best_d = None, -1
        for j, c in enumerate(candidates):
            d = min(sum(a != b for a, b in zip(c, candidates[i])) for i in chosen)
            if d > best_d:
                best, best_d = j, d
        chosen.append(best)
    return [candidates[i] for i in chosen]


def test_max_hamming_matches_a_slow_loop():
    got = P.max_hamming_permutations(12, num_tiles=5, seed=3)
    cands = list(itertools.permutations(range(5)))
    first = cands.index(tuple(got[0].tolist()))
    assert got.tolist() == [list(c) for c in _slow_max_min(cands, first, 12)]


def test_max_hamming_set_is_far_apart():
    perms = P.max_hamming_permutations(64, num_tiles=9, seed=0)
    assert perms.shape == (64, 9) and perms.dtype == torch.long
    assert len({tuple(r) for r in perms.tolist()}) == 64
    assert (perms.sort(1).values == torch.arange(9)).all()             # every row is a permutation
    d = P.hamming_distance(perms, perms).fill_diagonal_(99)
    g = torch.Generator().manual_seed(0)
    rand = torch.stack([torch.randperm(9, generator=g) for _ in range(64)])
    d_rand = P.hamming_distance(rand, rand).fill_diagonal_(99)
    assert d.min() >= 7 > d_rand.min()                                 # random sets have close pairs
    torch.testing.assert_close(P.max_hamming_permutations(64, 9, seed=0), perms)
    assert not torch.equal(P.max_hamming_permutations(64, 9, seed=1), perms)


def test_max_hamming_samples_candidates_for_many_tiles():
    perms = P.max_hamming_permutations(8, num_tiles=16, max_candidates=2000)
    assert perms.shape == (8, 16) and (perms.sort(1).values == torch.arange(16)).all()


@pytest.mark.parametrize("n,tiles", [(0, 9), (25, 4), (2.0, 4), (3, 1)])
def test_max_hamming_rejects_bad_inputs(n, tiles):
    with pytest.raises(ValueError):
        P.max_hamming_permutations(n, num_tiles=tiles)


def test_shuffle_tiles_convention_and_jigsaw_puzzle():
    tiles = torch.arange(2 * 4.).view(2, 4)
    perms = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    out = P.shuffle_tiles(tiles, perms, torch.tensor([1, 0]))
    assert out.tolist() == [[3, 2, 1, 0], [4, 5, 6, 7]]             # position i shows tile perms[i]
    with pytest.raises(ValueError, match="index"):
        P.shuffle_tiles(tiles, perms, torch.tensor([1]))
    with pytest.raises(ValueError, match="permutations"):
        P.shuffle_tiles(tiles, torch.tensor([[0, 1, 2]]), torch.tensor([0, 0]))

    torch.manual_seed(0)
    jig = P.Jigsaw(models.SmallCNN(width=4), num_permutations=10, tile_size=7, normalize=False, hidden_dim=8)
    x = _coords(B=3)
    shuffled, index = jig.puzzle(x, generator=torch.Generator().manual_seed(1))
    assert shuffled.shape == (3, 9, 3, 7, 7) and index.shape == (3,)
    for b in range(3):
        perm = jig.permutations[index[b]]
        cell_row = (shuffled[b, :, 0, 0, 0] - 1).div(10).floor()     # the cell each shown tile came from
        assert cell_row.tolist() == (perm // 3).float().tolist()


def test_jigsaw_and_context_methods_train():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 32, 32)
    jigsaw = P.Jigsaw(models.SmallCNN(width=4), num_permutations=10, tile_size=8, hidden_dim=8)
    for m, classes in [(jigsaw, 10),
                       (P.ContextPrediction(models.SmallCNN(width=4), tile_size=8, hidden_dim=8), 8)]:
        logits, targets = m.pretext_logits(x)
        assert logits.shape == (4, classes) and targets.max() < classes
        loss = m.training_step((x, None))["loss"]
        loss.backward()
        assert torch.isfinite(loss) and m.encoder.features[0][0].weight.grad is not None


# ---------------------------------------------------------------- context prediction

def test_context_pairs_neighbour_is_where_the_label_says():
    x = _coords(B=64)
    centre, neighbour, labels = P.context_pairs(x, tile_size=7, generator=torch.Generator().manual_seed(0))
    assert centre.shape == neighbour.shape == (64, 3, 7, 7) and labels.shape == (64,)
    assert set(labels.tolist()) == set(range(8))                      # every position occurs
    dr = ((neighbour[:, 0, 0, 0] - 1) // 10) - ((centre[:, 0, 0, 0] - 1) // 10)
    dc = ((neighbour[:, 1, 0, 0] - 1) // 10) - ((centre[:, 1, 0, 0] - 1) // 10)
    offsets = {"top-left": (-1, -1), "top": (-1, 0), "top-right": (-1, 1), "left": (0, -1), "right": (0, 1),
               "bottom-left": (1, -1), "bottom": (1, 0), "bottom-right": (1, 1)}
    for b in range(64):
        assert (dr[b].item(), dc[b].item()) == offsets[P.NEIGHBOUR_NAMES[labels[b]]]
    assert (centre[:, 2, 0, 0] == torch.arange(64.)).all()            # each pair comes from its own image


# ---------------------------------------------------------------- colourisation

def test_yuv_known_values_and_round_trip():
    colours = torch.tensor([[1., 1, 1], [1, 0, 0], [0, 0, 1], [0.3, 0.3, 0.3]]).view(4, 3, 1, 1)
    yuv = C.rgb_to_yuv(colours).flatten(1)
    torch.testing.assert_close(yuv[0], torch.tensor([1., 0, 0]), atol=1e-4, rtol=0)           # white
    torch.testing.assert_close(yuv[1], torch.tensor([0.299, -0.14713, 0.615]))               # red
    torch.testing.assert_close(yuv[2], torch.tensor([0.114, 0.436, -0.10001]))               # blue
    torch.testing.assert_close(yuv[3, 1:], torch.zeros(2), atol=1e-5, rtol=0)     # grey: no colour
    x = torch.rand(2, 3, 5, 5)
    torch.testing.assert_close(C.yuv_to_rgb(C.rgb_to_yuv(x)), x, atol=1e-5, rtol=0)
    # the stated ranges hold on the corners of the RGB cube
    corners = torch.tensor(list(itertools.product([0., 1.], repeat=3))).view(8, 3, 1, 1)
    c = C.rgb_to_yuv(corners)
    assert c[:, 1].abs().max() <= C.U_MAX + 1e-6 and c[:, 2].abs().max() <= C.V_MAX + 1e-6
    gray = C.luminance_image(x)
    assert gray.shape == x.shape and torch.equal(gray[:, 0], gray[:, 2])
    with pytest.raises(ValueError, match="3 channels"):
        C.rgb_to_yuv(torch.rand(2, 1, 4, 4))
    with pytest.raises(ValueError):
        C.yuv_to_rgb(torch.rand(3, 4, 4))


def test_colour_bins_round_trip_and_bad_inputs():
    centres = C.bin_centres(5)
    assert centres.shape == (25, 2)
    uv = centres.T.reshape(1, 2, 5, 5)
    assert C.uv_to_bins(uv, 5).flatten().tolist() == list(range(25))
    extremes = torch.tensor([[-1., 1.], [-1., 1.]]).view(1, 2, 1, 2)   # beyond the range: clamped
    assert C.uv_to_bins(extremes, 5).flatten().tolist() == [0, 24]
    for bad in (1, 2.5):
        with pytest.raises(ValueError, match="bins"):
            C.uv_to_bins(uv, bad)
    with pytest.raises(ValueError, match="uv"):
        C.uv_to_bins(torch.rand(1, 3, 2, 2), 4)


@pytest.mark.parametrize("encoder", [models.SmallCNN(width=4), models.ResNet18CIFAR(width=4),
                                     models.TinyViT(image_size=16, patch_size=4, dim=16, depth=1,
                                                    num_heads=2)])
def test_feature_map_pools_to_forward_features(encoder):
    encoder.eval()
    x = torch.rand(2, 3, 16, 16)
    fmap = C.feature_map(encoder, x)
    assert fmap.shape[:2] == (2, encoder.num_features) and fmap.dim() == 4
    torch.testing.assert_close(fmap.mean(dim=(2, 3)), encoder.forward_features(x), atol=1e-5, rtol=1e-4)


def test_feature_map_rejects_unknown_encoders():
    with pytest.raises(ValueError, match="feature_map"):
        C.feature_map(models.PixelEncoder(), torch.rand(1, 3, 32, 32))


def test_colorization_sees_only_luminance():
    torch.manual_seed(0)
    m = C.Colorization(models.SmallCNN(width=4), bins=4, out_size=4, hidden_dim=8).eval()
    x = torch.rand(3, 3, 16, 16)
    yuv = C.rgb_to_yuv(x)
    recoloured = C.yuv_to_rgb(torch.cat([yuv[:, :1], -yuv[:, 1:]], 1))  # same Y, other colours
    torch.testing.assert_close(m.colour_logits(x), m.colour_logits(recoloured), atol=1e-5, rtol=1e-4)
    logits, targets = m.pretext_logits(x)
    assert logits.shape == (3 * 16, 16) and targets.shape == (48,)
    expected = C.uv_to_bins(torch.nn.functional.adaptive_avg_pool2d(yuv[:, 1:], 4), 4).flatten()
    assert torch.equal(targets, expected)
    out = m.colorize(x)
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="temperature"):
        m.colorize(x, temperature=0)
    m.train()
    loss = m.training_step((x, None))["loss"]
    loss.backward()
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="bins"):
        C.Colorization(models.SmallCNN(width=4), bins=1)


def test_grayscale_input_wrapper():
    enc = models.SmallCNN(width=4).eval()
    wrapped = C.GrayscaleInput(enc)
    x = torch.rand(2, 3, 16, 16)
    assert wrapped.num_features == enc.num_features
    torch.testing.assert_close(wrapped.forward_features(x), enc.forward_features(C.luminance_image(x)))


# ---------------------------------------------------------------- accuracy

def test_pretext_accuracy_is_reproducible_and_checks_input():
    torch.manual_seed(0)
    m = P.ContextPrediction(models.SmallCNN(width=4), tile_size=8, hidden_dim=8)
    images = (torch.rand(40, 3, 32, 32) * 255).to(torch.uint8)
    a = P.pretext_accuracy(m, images, batch_size=16, seed=0)
    assert a == P.pretext_accuracy(m, images, batch_size=16, seed=0)
    assert 0 <= a <= 1 and math.isclose(a * 40, round(a * 40))
    monitor = P.pretext_monitor(images)
    assert monitor(m) == {"pretext": P.pretext_accuracy(m, images)}
    with pytest.raises(ValueError, match="empty"):
        P.pretext_accuracy(m, images[:0])


def test_rotation_learns_when_orientation_is_visible():
    """On images with an up (a bright top half), rotation prediction is learnable."""
    torch.manual_seed(0)
    x = torch.rand(64, 3, 16, 16) * 0.3
    x[:, :, :6] += 0.6
    m = P.RotationPrediction(models.SmallCNN(width=4), hidden_dim=16, crop_scale=None)
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for _ in range(30):
        loss = m.training_step((x, None))["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert P.pretext_accuracy(m, x) > 0.9


# ---------------------------------------------------------------- camera artefacts for the shortcut demo

def test_colour_shading_encodes_position_and_flat_field_undoes_it():
    x = torch.full((1, 3, 16, 16), 0.5)
    shaded = nb01.colour_shading(x, 0.4)
    assert shaded[0, 0, :, -1].mean() > shaded[0, 0, :, 0].mean()     # red grows to the right
    assert shaded[0, 2, -1].mean() > shaded[0, 2, 0].mean()           # blue grows downwards
    assert shaded[0, 1, 8, 8] > shaded[0, 1, 0, 0]                    # green falls off to the corners
    torch.testing.assert_close(nb01.flat_field(shaded, 0.4), x)
    torch.testing.assert_close(nb01.colour_shading(x, 0.0), x)
    with pytest.raises(ValueError, match="strength"):
        nb01.colour_shading(x, 1.0)
    with pytest.raises(ValueError, match="RGB"):
        nb01.flat_field(torch.rand(1, 1, 4, 4))


def test_chromatic_aberration_separates_channels_away_from_the_centre():
    x = torch.zeros(1, 3, 33, 33)
    x[:, :, :, 28:] = 1.0                                              # a vertical edge on the right
    out = nb01.chromatic_aberration(x, 0.1)
    assert torch.equal(out[:, 1], x[:, 1])                            # green stays
    red_edge = (out[0, 0, 16] > 0.5).nonzero().min()
    blue_edge = (out[0, 2, 16] > 0.5).nonzero().min()
    assert blue_edge < 28 < red_edge                                  # red pushed outwards, blue inwards
    torch.testing.assert_close(nb01.chromatic_aberration(x, 0.0), x)
    with pytest.raises(ValueError, match="strength"):
        nb01.chromatic_aberration(x, 0.6)


def test_drop_colour_keeps_one_channel_per_tile():
    tiles = torch.rand(4, 9, 3, 5, 5)
    out = P.drop_colour(tiles, torch.Generator().manual_seed(0))
    assert out.shape == tiles.shape
    assert torch.equal(out[:, :, 0], out[:, :, 1]) and torch.equal(out[:, :, 1], out[:, :, 2])
    for b, t in [(0, 0), (3, 8)]:
        assert any(torch.equal(out[b, t, 0], tiles[b, t, c]) for c in range(3))
    with pytest.raises(ValueError):
        P.drop_colour(torch.rand(5, 5))


def test_upscale_images_and_bad_factor():
    x = torch.rand(2, 3, 8, 8)
    assert P.upscale_images(x, 1) is x and P.upscale_images(x, 2).shape == (2, 3, 16, 16)
    for bad in (0, 1.5):
        with pytest.raises(ValueError, match="upscale"):
            P.upscale_images(x, bad)
    with pytest.raises(ValueError, match="upscale"):
        P.Jigsaw(models.SmallCNN(width=4), num_permutations=4, upscale=0)


@pytest.mark.parametrize("make", [
    lambda enc: P.RotationPrediction(enc, hidden_dim=8),
    lambda enc: P.Jigsaw(enc, num_permutations=6, grid=2, tile_size=12, hidden_dim=8),
    lambda enc: P.ContextPrediction(enc, tile_size=8, hidden_dim=8),
    lambda enc: C.Colorization(enc, bins=4, out_size=4, hidden_dim=8),
], ids=["rotation", "jigsaw", "context", "colourisation"])
def test_every_task_saves_and_loads_as_it_was(tmp_path, make):
    from course_utils.methods.base import load

    torch.manual_seed(0)
    m = make(models.build_encoder("small_cnn", width=4))
    m.training_step((torch.rand(4, 3, 32, 32), None))["loss"].backward()   # BatchNorm statistics move
    m.save(tmp_path / "task.pt", pretext=0.5)
    back = load(tmp_path / "task.pt")
    assert type(back) is type(m) and back.config == m.config and back.info == {"pretext": 0.5}
    x = torch.rand(3, 3, 32, 32)
    m.eval()
    torch.testing.assert_close(back.encoder(x), m.encoder(x))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    torch.testing.assert_close(back.pretext_logits(x, g1)[0], m.pretext_logits(x, g2)[0])
