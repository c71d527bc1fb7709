import dataclasses
import math

import pytest
import torch
import torchvision.transforms.functional as TF

from course_utils import augment as A


def images(b=6, c=3, s=16, seed=0):
    return torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(seed))


def same_images(b=6):
    return images(1).expand(b, -1, -1, -1).contiguous()


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


OPS = {
    "crop": lambda x, g: A.random_resized_crop(x, 12, generator=g),
    "crop+flip": lambda x, g: A.random_resized_crop(x, 20, flip_p=0.5, generator=g),
    "flip": lambda x, g: A.random_horizontal_flip(x, generator=g),
    "jitter": lambda x, g: A.color_jitter(x, generator=g),
    "grayscale": lambda x, g: A.random_grayscale(x, generator=g),
    "blur": lambda x, g: A.gaussian_blur(x, 3, generator=g),
    "solarize": lambda x, g: A.solarize(x, generator=g),
    "simclr": lambda x, g: A.simclr_augment(12, blur_p=0.5, solarize_p=0.2)(x, generator=g),
}


# --------------------------------------------------------------------------------------
# every op: shape, dtype, device, range, uint8, reproducibility


@pytest.mark.parametrize("name", OPS)
def test_shape_dtype_range_and_reproducibility(name):
    op, x = OPS[name], images()
    y = op(x, gen(1))
    size = {"crop": 12, "crop+flip": 20, "simclr": 12}.get(name, 16)
    assert y.shape == (6, 3, size, size) and y.dtype == x.dtype and y.device == x.device
    assert 0 <= y.min() and y.max() <= 1 and torch.isfinite(y).all()
    assert torch.equal(y, op(x, gen(1)))                  # same seed, same output
    assert not torch.equal(op(images(64), gen(1)), op(images(64), gen(2)))  # other seed, other output
    assert torch.equal(x, images())                       # the input is left alone


@pytest.mark.parametrize("name", OPS)
def test_uint8_input_is_converted_to_float(name):
    x = images()
    y8 = OPS[name]((x * 255).round().to(torch.uint8), gen(1))
    yf = OPS[name]((x * 255).round() / 255, gen(1))
    assert y8.dtype == torch.float32
    torch.testing.assert_close(y8, yf)


@pytest.mark.parametrize("value", [0.0, 1.0])
def test_extreme_images_stay_in_range(value):
    x = torch.full((4, 3, 16, 16), value)
    for name, op in OPS.items():
        y = op(x, gen(0))
        assert 0 <= y.min() and y.max() <= 1, name


def test_float64_works():
    y = A.simclr_augment(8, blur_p=0.5)(images().double(), gen(0))
    assert y.dtype == torch.float64


def test_global_generator_is_used_without_one():
    torch.manual_seed(0)
    y1 = A.simclr_augment(16)(images())
    torch.manual_seed(0)
    assert torch.equal(y1, A.simclr_augment(16)(images()))


def test_rand_draws_with_a_generator_on_another_device():
    """A CPU generator cannot draw on a GPU; _rand draws on its device, then moves.
    The meta device stands in for a GPU here."""
    x = torch.empty(3, 1, 1, 1, device="meta")
    assert A._rand((3,), x, gen(0)).device.type == "meta"
    cpu = A._rand((5,), torch.zeros(1), gen(7))
    assert torch.equal(cpu, torch.rand(5, generator=gen(7)))


# --------------------------------------------------------------------------------------
# per-sample randomness and identities


@pytest.mark.parametrize("op", [
    lambda x, g: A.random_resized_crop(x, 16, generator=g),
    lambda x, g: A.color_jitter(x, p=1.0, generator=g),
    lambda x, g: A.gaussian_blur(x, 5, p=1.0, generator=g),
])
def test_each_sample_gets_its_own_draw(op):
    y = op(same_images(), gen(0))
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y[1], y[2])


@pytest.mark.parametrize("op", [A.random_horizontal_flip, A.random_grayscale, A.solarize,
                                lambda x, p, generator: A.color_jitter(x, p=p, generator=generator)])
def test_probability_is_per_sample(op):
    x = same_images(64)
    changed = ~(op(x, p=0.5, generator=gen(0)) == x).flatten(1).all(1)
    assert 10 < changed.sum() < 54


def test_p_zero_and_strength_zero_are_identity():
    x = images()
    for op in (A.random_horizontal_flip, A.random_grayscale, A.solarize, A.color_jitter):
        assert torch.equal(op(x, p=0.0), x)
    assert torch.equal(A.gaussian_blur(x, 3, p=0.0), x)
    assert torch.equal(A.color_jitter(x, 0, 0, 0, 0, p=1.0), x)  # identity factors are exact
    ones = torch.ones(6)
    assert torch.equal(A._apply_jitter(x, ones, ones, ones, torch.zeros(6)), x)  # hue 0


def test_simclr_transform_with_everything_off_is_identity():
    t = A.SimCLRTransform(image_size=16, crop_scale=(1.0, 1.0), flip_p=0.0, jitter_strength=0.0,
                          grayscale_p=0.0)
    torch.testing.assert_close(t(images()), images())


# --------------------------------------------------------------------------------------
# crop and flip


def test_full_crop_is_identity():
    """Identity affine + align_corners=False puts every sample on a pixel centre: equal
    to the input up to rounding in the coordinate arithmetic (exactly for some sizes)."""
    x = images()
    torch.testing.assert_close(A.random_resized_crop(x, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0)), x)
    x = images(s=32)
    torch.testing.assert_close(A.random_resized_crop(x, 32, scale=(1.0, 1.0), ratio=(1.0, 1.0)), x)


def ramps(b, H, W):
    """(b, 2, H, W): channel 0 rises left to right, channel 1 top to bottom, through
    (position + 1) / 2 at every pixel centre, position in grid_sample coordinates [-1, 1]."""
    x = torch.zeros(b, 2, H, W)
    x[:, 0] = ((torch.arange(W) + 0.5) / W).view(1, W)
    x[:, 1] = ((torch.arange(H) + 0.5) / H).view(H, 1)
    return x


def measure_boxes(y):
    """From crops of ramps(): box width, height (fractions) and centre, read off the
    slope and middle value of the ramps (the middle half of the crop, away from edges)."""
    S = y.shape[-1]
    k1, k2, m = S // 4, 3 * S // 4 - 1, S // 2
    w = (y[:, 0, m, k2] - y[:, 0, m, k1]) * S / (k2 - k1)
    h = (y[:, 1, k2, m] - y[:, 1, k1, m]) * S / (k2 - k1)
    centre = y[:, :, m - 1:m + 1, m - 1:m + 1].mean(dim=(2, 3)) * 2 - 1  # (B, 2): cx, cy
    return w, h, centre[:, 0], centre[:, 1]


def test_crop_of_a_quarter_of_the_area_is_half_the_width():
    y = A.random_resized_crop(ramps(50, 64, 64), 32, scale=(0.25, 0.25), ratio=(1.0, 1.0), generator=gen(0))
    w, h, cx, cy = measure_boxes(y)
    torch.testing.assert_close(w, torch.full_like(w, 0.5), atol=1e-4, rtol=0)
    torch.testing.assert_close(h, torch.full_like(h, 0.5), atol=1e-4, rtol=0)
    assert cx.abs().max() <= 0.5 + 1e-4 and cy.abs().max() <= 0.5 + 1e-4  # the box stays inside
    assert cx.min() < -0.3 and cx.max() > 0.3                             # and goes everywhere


@pytest.mark.parametrize("H, W", [(64, 64), (32, 64), (64, 32)])
@pytest.mark.parametrize("scale", [(0.05, 0.2), (0.5, 1.0)])
def test_crop_area_aspect_and_position(H, W, scale):
    """Area fraction in scale, aspect ratio in pixels (width / height) in ratio, box inside.
    Large boxes that would stick out keep their area and get a less extreme aspect ratio."""
    ratio = (0.5, 2.0)
    y = A.random_resized_crop(ramps(200, H, W), 32, scale=scale, ratio=ratio, generator=gen(0))
    w, h, cx, cy = measure_boxes(y)
    area, aspect = w * h, (w * W) / (h * H)
    assert scale[0] - 1e-3 < area.min() < scale[0] + 0.05 and scale[1] - 0.05 < area.max() < scale[1] + 1e-3
    assert ratio[0] - 1e-3 < aspect.min() and aspect.max() < ratio[1] + 1e-3
    if scale[1] <= 0.2:  # every drawn box fits: the whole range of aspect ratios shows up
        assert aspect.min() < 0.6 and aspect.max() > 1.7
    assert (w <= 1 + 1e-4).all() and (h <= 1 + 1e-4).all()
    assert (cx.abs() <= 1 - w + 1e-4).all() and (cy.abs() <= 1 - h + 1e-4).all()


def test_crop_of_the_whole_area_is_the_whole_image():
    x = images()
    torch.testing.assert_close(A.random_resized_crop(x, 16, scale=(1.0, 1.0), generator=gen(0)), x)


def test_crop_of_a_step_image():
    """Left half 0, right half 1. A square crop of area 1/16 is a quarter of the width;
    its centre is uniform over [-0.75, 0.75] (normalised), so it lies wholly in the dark
    half when the centre is below -0.25: a third of the time."""
    x = torch.zeros(300, 1, 32, 32)
    x[..., 16:] = 1
    y = A.random_resized_crop(x, 32, scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0), generator=gen(0))
    mean = y.flatten(1).mean(1)
    dark, bright = (mean < 1e-6).float().mean(), (mean > 1 - 1e-6).float().mean()
    assert 0.23 < dark < 0.43 and 0.23 < bright < 0.43
    # a straddling crop shows the edge magnified 4x: about 4 of its 32 columns are mixed
    straddle = y[(mean > 0.05) & (mean < 0.95)]
    mixed = ((straddle.mean(dim=(1, 2)) > 0.01) & (straddle.mean(dim=(1, 2)) < 0.99)).sum(1).float()
    assert 1 <= mixed.mean() <= 6


def test_flip_with_p_one():
    x = images()
    assert torch.equal(A.random_horizontal_flip(x, p=1.0), x.flip(-1))
    y = A.random_resized_crop(x, 16, scale=(1, 1), ratio=(1, 1), flip_p=1.0)
    torch.testing.assert_close(y, x.flip(-1))


def test_fused_flip_flips_about_half():
    y = A.random_resized_crop(ramps(200, 32, 32), 16, scale=(0.5, 1), flip_p=0.5, generator=gen(0))
    w, _, _, _ = measure_boxes(y)
    assert 60 < (w < 0).sum() < 140


# --------------------------------------------------------------------------------------
# colour


def test_grayscale_weights():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = 1.0  # pure red
    y = A.random_grayscale(x, p=1.0)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    torch.testing.assert_close(y[0, 0, 0, 0], torch.tensor(0.299))
    x = torch.tensor([0.2, 0.4, 0.6]).view(1, 3, 1, 1)
    luma = 0.299 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6
    torch.testing.assert_close(A.random_grayscale(x, p=1.0), torch.full((1, 3, 1, 1), luma))


def loop_jitter(x, b, c, s):
    """The oracle: one image at a time, torchvision's functional ops in the same order."""
    out = []
    for xi, bi, ci, si in zip(x, b.tolist(), c.tolist(), s.tolist()):
        xi = TF.adjust_brightness(xi, bi)
        xi = TF.adjust_contrast(xi, ci)
        out.append(TF.adjust_saturation(xi, si))
    return torch.stack(out)


def test_jitter_matches_a_loop_of_torchvision_ops():
    x = images(4)
    b = torch.tensor([0.7, 1.0, 1.3, 0.9])
    c = torch.tensor([1.2, 0.6, 1.0, 1.4])
    s = torch.tensor([0.5, 1.5, 1.0, 0.0])
    ones, zero = torch.ones(4), torch.zeros(4)
    # brightness alone, against the obvious loop
    torch.testing.assert_close(A._apply_jitter(x, b, ones, ones, zero),
                               torch.stack([(xi * bi).clamp(0, 1) for xi, bi in zip(x, b)]))
    # contrast and saturation alone, then all three, against torchvision
    tol = dict(atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(A._apply_jitter(x, ones, c, ones, zero), loop_jitter(x, ones, c, ones), **tol)
    torch.testing.assert_close(A._apply_jitter(x, ones, ones, s, zero), loop_jitter(x, ones, ones, s), **tol)
    torch.testing.assert_close(A._apply_jitter(x, b, c, s, zero), loop_jitter(x, b, c, s), **tol)


def test_jitter_factors_stay_in_their_ranges():
    """Strength 0.4 brightness only: each image is scaled by a factor in [0.6, 1.4]."""
    x = torch.full((200, 3, 2, 2), 0.5)
    y = A.color_jitter(x, brightness=0.4, contrast=0, saturation=0, hue=0, p=1.0, generator=gen(0))
    factor = y[:, 0, 0, 0] / 0.5
    assert 0.6 - 1e-6 <= factor.min() < 0.65 and 1.35 < factor.max() <= 1.4 + 1e-6


def test_hue_matrix_is_the_yiq_rotation_written_out():
    h = torch.tensor([0.0, 0.1, -0.3, 0.5], dtype=torch.float64)
    rgb2yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]],
                           dtype=torch.float64)
    for hi, m in zip(h.tolist(), A._yiq_hue_matrix(h)):
        t = -2 * math.pi * hi
        rot = torch.tensor([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]],
                           dtype=torch.float64)
        torch.testing.assert_close(m, torch.linalg.inv(rgb2yiq) @ rot @ rgb2yiq)


def test_hue_keeps_gray_and_luma_and_turns_like_torchvision():
    gray = torch.full((2, 3, 4, 4), 0.4)
    ones = torch.ones(2)
    torch.testing.assert_close(A._apply_jitter(gray, ones, ones, ones, torch.tensor([0.1, -0.3])), gray)
    m = A._yiq_hue_matrix(torch.tensor([0.25]))[0]
    luma = torch.tensor(A.GRAY_WEIGHTS)
    torch.testing.assert_close(luma @ m, luma, atol=1e-5, rtol=0)  # a hue turn keeps brightness
    # direction: a positive shift turns red towards yellow (green up, blue stays 0), as in HSV
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    y = A._apply_jitter(red, torch.ones(1), torch.ones(1), torch.ones(1), torch.tensor([0.1])).flatten()
    assert y[1] > 0.1 and y[2] == 0 and TF.adjust_hue(red[0], 0.1).flatten()[1] > 0.1
    # on smooth random images a shift h is closer to torchvision's h than to its -h
    x = torch.nn.functional.interpolate(images(8, s=4), size=16, mode="bilinear")
    ours = A._apply_jitter(x, *torch.ones(3, 8), torch.full((8,), 0.05))
    ref = torch.stack([TF.adjust_hue(xi, 0.05) for xi in x])
    opposite = torch.stack([TF.adjust_hue(xi, -0.05) for xi in x])
    assert (ours - ref).abs().mean() < (ours - opposite).abs().mean()


# --------------------------------------------------------------------------------------
# blur, solarize, normalize


def test_blur_matches_torchvision_per_image():
    x = images(4)
    for sigma in (0.5, 1.5):
        y = A.gaussian_blur(x, 5, sigma=(sigma, sigma), p=1.0)
        ref = torch.stack([TF.gaussian_blur(xi, [5, 5], [sigma, sigma]) for xi in x])
        torch.testing.assert_close(y, ref, atol=1e-5, rtol=1e-4)


def test_blur_small_sigma_and_constant_images():
    x = images()
    torch.testing.assert_close(A.gaussian_blur(x, 3, sigma=(1e-3, 1e-3), p=1.0), x)
    const = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(A.gaussian_blur(const, 5, p=1.0), const)
    assert torch.isclose(A.gaussian_blur(x, 3, p=1.0).mean(), x.mean(), atol=1e-2)


def test_solarize_values():
    x = torch.tensor([0.2, 0.5, 0.9]).view(1, 1, 1, 3)
    torch.testing.assert_close(A.solarize(x, 0.5, p=1.0), torch.tensor([0.2, 0.5, 0.1]).view(1, 1, 1, 3))
    torch.testing.assert_close(A.solarize(x, 0.3, p=1.0), torch.tensor([0.2, 0.5, 0.1]).view(1, 1, 1, 3))
    torch.testing.assert_close(A.solarize(x, 0.1, p=1.0), torch.tensor([0.8, 0.5, 0.1]).view(1, 1, 1, 3))


def test_normalize():
    x = torch.tensor([0.5, 0.25, 1.0]).view(1, 3, 1, 1)
    y = A.normalize(x, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    torch.testing.assert_close(y, torch.tensor([0.0, -1.0, 1.0]).view(1, 3, 1, 1))
    with pytest.raises(ValueError, match="std"):
        A.normalize(x, mean=(0.5,) * 3, std=(0.5, 0.0, 0.5))


# --------------------------------------------------------------------------------------
# pipelines and presets


def test_simclr_preset_settings_and_repr():
    t = A.simclr_augment(32, strength=0.5)
    assert (t.image_size, t.jitter_strength, t.blur_p, t.solarize_p) == (32, 0.5, 0.0, 0.0)
    for text in ("image_size=32", "crop_scale=(0.08, 1.0)", "jitter_strength=0.5", "blur_p=0.0"):
        assert text in repr(t)
    t.grayscale_p = 1.0  # public settings take effect at once
    y = t(images(), gen(0))
    assert torch.equal(y[:, 0], y[:, 1])
    t2 = dataclasses.replace(t, image_size=8)
    assert t2(images(), gen(0)).shape == (6, 3, 8, 8)


def test_two_and_multi_views():
    t = A.simclr_augment(16)
    x1, x2 = A.TwoViews(t)(images(), generator=gen(0))
    assert x1.shape == x2.shape == (6, 3, 16, 16) and not torch.equal(x1, x2)
    views = A.MultiViews(t, 4)(images())
    assert len(views) == 4 and not torch.equal(views[2], views[3])
    assert "jitter_strength=0.5" in repr(A.TwoViews(t))


def test_crop_flip_blur_solarize_work_for_any_channel_count():
    for c in (1, 2, 4):
        x = images(c=c)
        assert A.random_resized_crop(x, 8).shape == (6, c, 8, 8)
        assert A.random_horizontal_flip(x).shape == x.shape
        assert A.gaussian_blur(x, 3, p=1.0).shape == x.shape
        assert A.solarize(x, p=1.0).shape == x.shape


# --------------------------------------------------------------------------------------
# bad inputs


@pytest.mark.parametrize("call, match", [
    (lambda x: A.color_jitter(x[0]), r"\(B, C, H, W\)"),
    (lambda x: A.random_resized_crop(x[0], 8), r"\(B, C, H, W\)"),
    (lambda x: A.random_horizontal_flip(x.long()), "uint8"),
    (lambda x: A.color_jitter(x, brightness=-1), "brightness must be >= 0"),
    (lambda x: A.color_jitter(x, saturation=-0.1), "saturation"),
    (lambda x: A.color_jitter(x, hue=0.7), r"hue must be in \[0, 0.5\]"),
    (lambda x: A.color_jitter(x, p=-0.1), r"p must be a probability in \[0, 1\]"),
    (lambda x: A.random_grayscale(x, p=1.5), r"p must be a probability in \[0, 1\]"),
    (lambda x: A.random_resized_crop(x, 8, flip_p=2), "flip_p"),
    (lambda x: A.random_resized_crop(x, 0), "size must be a positive int"),
    (lambda x: A.random_resized_crop(x, 8, scale=(0.5, 0.2)), "scale"),
    (lambda x: A.random_resized_crop(x, 8, ratio=(0, 1)), "ratio"),
    (lambda x: A.gaussian_blur(x, 4), "kernel_size must be a positive odd"),
    (lambda x: A.gaussian_blur(x, 33), "kernel_size must be below"),
    (lambda x: A.gaussian_blur(x, 3, sigma=(0, 1)), "sigma"),
    (lambda x: A.random_grayscale(images(c=1)), "RGB"),
    (lambda x: A.color_jitter(images(c=4)), "RGB"),
    (lambda x: A.SimCLRTransform(jitter_strength=-1), "jitter_strength"),
    (lambda x: A.SimCLRTransform(image_size=0), "image_size"),
    (lambda x: A.SimCLRTransform(grayscale_p=2), "grayscale_p"),
    (lambda x: A.MultiViews(A.simclr_augment(), 0), "n_views"),
])
def test_bad_inputs_are_named(call, match):
    with pytest.raises(ValueError, match=match):
        call(images())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda_with_cpu_and_cuda_generators():
    x = (images() * 255).to(torch.uint8).cuda()
    t = A.simclr_augment(16, blur_p=0.5, solarize_p=0.2)
    y = t(x, generator=gen(0))
    assert y.is_cuda and y.shape == (6, 3, 16, 16) and 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, t(x, generator=gen(0)))
    g = torch.Generator(device=x.device).manual_seed(0)
    assert t(x, generator=g).is_cuda
