import pytest
import torch
import torchvision.transforms.functional as TF

from course_utils import augment as A


def images(b=6, c=3, s=16, seed=0):
    return torch.rand(b, c, s, s, generator=torch.Generator().manual_seed(seed))


def same_images(b=6):
    return images(1).expand(b, -1, -1, -1).contiguous()


OPS = [
    lambda x, g: A.random_resized_crop(x, 12, generator=g),
    lambda x, g: A.random_horizontal_flip(x, generator=g),
    lambda x, g: A.color_jitter(x, generator=g),
    lambda x, g: A.random_grayscale(x, generator=g),
    lambda x, g: A.gaussian_blur(x, 3, generator=g),
    lambda x, g: A.solarize(x, generator=g),
    lambda x, g: A.simclr_augment(12, blur_p=0.5, solarize_p=0.2)(x, generator=g),
]


@pytest.mark.parametrize("op", OPS)
def test_shape_dtype_range_and_reproducibility(op):
    x = images()
    y = op(x, torch.Generator().manual_seed(1))
    assert y.dtype == x.dtype and y.shape[:2] == x.shape[:2] and y.device == x.device
    assert 0 <= y.min() and y.max() <= 1
    assert torch.equal(y, op(x, torch.Generator().manual_seed(1)))


def test_uint8_input_is_accepted():
    x = (images() * 255).to(torch.uint8)
    y = A.simclr_augment(16)(x)
    assert y.dtype == torch.float32 and y.max() <= 1


@pytest.mark.parametrize("op", [
    lambda x, g: A.random_resized_crop(x, 16, generator=g),
    lambda x, g: A.color_jitter(x, p=1.0, generator=g),
    lambda x, g: A.gaussian_blur(x, 5, p=1.0, generator=g),
])
def test_each_sample_gets_its_own_draw(op):
    y = op(same_images(), torch.Generator().manual_seed(0))
    assert not torch.allclose(y[0], y[1]) and not torch.allclose(y[1], y[2])


def test_different_seeds_differ():
    t = A.simclr_augment(16)
    x = images()
    assert not torch.equal(t(x, torch.Generator().manual_seed(0)), t(x, torch.Generator().manual_seed(1)))


def test_p_zero_and_strength_zero_are_identity():
    x = images()
    for op in (A.random_horizontal_flip, A.random_grayscale, A.solarize):
        assert torch.equal(op(x, p=0.0), x)
    assert torch.equal(A.color_jitter(x, p=0.0), x)
    torch.testing.assert_close(A.color_jitter(x, 0, 0, 0, 0, p=1.0), x)
    assert torch.equal(A.gaussian_blur(x, 3, p=0.0), x)


def test_full_crop_is_identity():
    x = images()
    y = A.random_resized_crop(x, 16, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    torch.testing.assert_close(y, x)


def test_crop_box_size_and_position():
    """Left half 0, right half 1. A square crop of area 1/16 is a quarter of the width;
    its centre is uniform over [-0.75, 0.75] (normalised), so it lies wholly in the dark
    half when the centre is below -0.25: a third of the time."""
    x = torch.zeros(300, 1, 32, 32)
    x[..., 16:] = 1
    y = A.random_resized_crop(x, 32, scale=(1 / 16, 1 / 16), ratio=(1.0, 1.0),
                              generator=torch.Generator().manual_seed(0))
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


def test_grayscale_weights():
    x = torch.zeros(1, 3, 2, 2)
    x[0, 0] = 1.0  # pure red
    y = A.random_grayscale(x, p=1.0)
    assert torch.equal(y[:, 0], y[:, 1]) and torch.equal(y[:, 1], y[:, 2])
    torch.testing.assert_close(y[0, 0, 0, 0], torch.tensor(0.299))


def test_jitter_matches_torchvision_and_a_loop():
    x = images(4)
    b = torch.tensor([0.7, 1.0, 1.3, 0.9])
    c = torch.tensor([1.2, 0.6, 1.0, 1.4])
    s = torch.tensor([0.5, 1.5, 1.0, 0.0])
    zero = torch.zeros(4)
    ones = torch.ones(4)
    # brightness alone, against the obvious loop
    torch.testing.assert_close(A._apply_jitter(x, b, ones, ones, zero),
                               torch.stack([(xi * bi).clamp(0, 1) for xi, bi in zip(x, b)]))
    # contrast and saturation alone, against torchvision's functional ops
    torch.testing.assert_close(A._apply_jitter(x, ones, c, ones, zero),
                               torch.stack([TF.adjust_contrast(xi, ci.item()) for xi, ci in zip(x, c)]),
                               atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(A._apply_jitter(x, ones, ones, s, zero),
                               torch.stack([TF.adjust_saturation(xi, si.item()) for xi, si in zip(x, s)]),
                               atol=1e-4, rtol=1e-3)


def test_hue_rotation_keeps_gray_and_luma():
    gray = torch.full((2, 3, 4, 4), 0.4)
    h = torch.tensor([0.1, -0.3])
    torch.testing.assert_close(A._apply_jitter(gray, torch.ones(2), torch.ones(2), torch.ones(2), h), gray)
    m = A._yiq_hue_matrix(torch.tensor([0.25]))[0]
    luma = torch.tensor(A.GRAY_WEIGHTS)
    torch.testing.assert_close(luma @ m, luma, atol=1e-5, rtol=0)  # a hue turn keeps brightness


def test_blur_small_sigma_and_constant_images():
    x = images()
    torch.testing.assert_close(A.gaussian_blur(x, 3, sigma=(1e-3, 1e-3), p=1.0), x)
    const = torch.full((2, 3, 8, 8), 0.3)
    torch.testing.assert_close(A.gaussian_blur(const, 5, p=1.0), const)


def test_solarize_values():
    x = torch.tensor([0.2, 0.5, 0.9]).view(1, 1, 1, 3)
    torch.testing.assert_close(A.solarize(x, 0.5, p=1.0), torch.tensor([0.2, 0.5, 0.1]).view(1, 1, 1, 3))


def test_two_and_multi_views():
    t = A.simclr_augment(16)
    x1, x2 = A.TwoViews(t)(images())
    assert x1.shape == x2.shape == (6, 3, 16, 16) and not torch.equal(x1, x2)
    assert len(A.MultiViews(t, 4)(images())) == 4
    assert "jitter_strength=0.5" in repr(t)


def test_bad_inputs_are_named():
    x = images()
    with pytest.raises(ValueError, match=r"\(B, C, H, W\)"):
        A.color_jitter(x[0])
    with pytest.raises(ValueError, match="brightness"):
        A.color_jitter(x, brightness=-1)
    with pytest.raises(ValueError, match="hue"):
        A.color_jitter(x, hue=0.7)
    with pytest.raises(ValueError, match="p must"):
        A.random_grayscale(x, p=1.5)
    with pytest.raises(ValueError, match="size"):
        A.random_resized_crop(x, 0)
    with pytest.raises(ValueError, match="scale"):
        A.random_resized_crop(x, 8, scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="kernel_size"):
        A.gaussian_blur(x, 4)
    with pytest.raises(ValueError, match="RGB"):
        A.random_grayscale(images(c=1))
    with pytest.raises(ValueError, match="jitter_strength"):
        A.SimCLRTransform(jitter_strength=-1)
    with pytest.raises(ValueError, match="n_views"):
        A.MultiViews(A.simclr_augment(), 0)


def test_crop_flip_blur_work_for_any_channel_count():
    x = images(c=1)
    assert A.random_resized_crop(x, 8).shape == (6, 1, 8, 8)
    assert A.gaussian_blur(x, 3, p=1.0).shape == x.shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_runs_on_cuda_with_a_cpu_generator():
    x = images().cuda()
    y = A.simclr_augment(16)(x, generator=torch.Generator().manual_seed(0))
    assert y.is_cuda
