import pytest
import torch

from course_utils import data
from course_utils.shapes import SHAPE_CLASSES, draw_shapes, make_shapes


def test_shapes_deterministic_balanced_and_distinct_splits():
    x1, y1 = make_shapes(64, seed=3)
    x2, y2 = make_shapes(64, seed=3)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert x1.shape == (64, 3, 32, 32) and x1.dtype == torch.uint8
    assert torch.bincount(y1, minlength=8).tolist() == [8] * 8
    x3, _ = make_shapes(64, seed=4)
    assert not torch.equal(x1, x3)


def test_every_shape_is_visible():
    """Each image must differ from its background where the shape is."""
    labels = torch.arange(len(SHAPE_CLASSES)).repeat(4)
    x = draw_shapes(labels, noise=0.0, clutter=0).float()
    spread = x.flatten(2).std(2).mean(1)  # a flat image would have std ~0 after removing gradient
    assert (spread > 5).all()


def test_shapes_bad_inputs():
    with pytest.raises(ValueError, match="labels"):
        draw_shapes(torch.tensor([0, 9]))
    with pytest.raises(ValueError, match="n must"):
        make_shapes(0)


def test_load_images_shapes_and_subset():
    d = data.load_images("shapes", "test", n=40)
    assert len(d) == 40 and d.classes == list(SHAPE_CLASSES)
    train = data.load_images("shapes", "train", n=40)
    assert not torch.equal(train.images, d.images)


def test_load_images_digits():
    tr, te = data.load_images("digits", "train"), data.load_images("digits", "test")
    assert tr.images.shape[1:] == (3, 32, 32) and len(tr) + len(te) == 1797
    assert set(tr.labels.tolist()) == set(range(10))


def test_load_images_bad_names():
    with pytest.raises(ValueError, match="unknown data set"):
        data.load_images("imagenet")
    with pytest.raises(ValueError, match="split"):
        data.load_images("shapes", "valid")
    with pytest.raises(ValueError, match="n must"):
        data.load_images("shapes", n=0)


def test_real_data_missing_offline_is_clear(tmp_path):
    with pytest.raises(data.DatasetNotFound, match="download"):
        data.load_images("cifar10", root=tmp_path)


def test_batches_cover_everything_once():
    d = data.load_images("shapes", "test", n=50)
    seen = torch.cat([y for _, y in data.batches(d, 16, generator=torch.Generator().manual_seed(0))])
    assert len(seen) == 50 and torch.bincount(seen).sum() == 50
    x, _ = next(data.batches(d, 16))
    assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert sum(1 for _ in data.batches(d, 16, drop_last=True)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        next(data.batches(d, 0))


def test_as_pair_is_the_one_place_that_tells_data_apart():
    from course_utils.data import as_pair, load_images

    d = load_images("shapes", "train", n=8)
    x, y = as_pair(d)
    assert x is d.images and y is d.labels
    assert as_pair((x, y)) == (x, y)
    for bad in ([1, 2, 3], (x,), (x.numpy(), y), "shapes"):
        with pytest.raises(ValueError, match="ImageData .* or an \\(inputs, labels\\) pair"):
            as_pair(bad)


def test_shape_factors_say_what_drew_each_image():
    from course_utils.data import shape_factors
    from course_utils.shapes import FACTORS, draw_shapes
    labels = torch.arange(16) % 8
    plain = draw_shapes(labels, seed=5)
    images, factors = draw_shapes(labels, seed=5, return_factors=True)
    assert torch.equal(plain, images)                          # asking for factors changes no pixel
    assert set(factors) == set(FACTORS) and factors["mask"].shape == (16, 32, 32)
    assert factors["mask"].min() >= 0 and factors["mask"].max() <= 1
    inside = factors["mask"] == 1                              # fully covered pixels show the shape's colour
    x = images.float() / 255
    for b in range(16):
        mean = x[b][:, inside[b]].mean(1)
        assert torch.allclose(mean, factors["colour"][b].clamp(0, 1), atol=0.03)
    # the mask's centre of mass sits near the drawn centre (x right, y down, both in [-1, 1])
    grid = (torch.arange(32).float() + 0.5) / 32 * 2 - 1
    m = factors["mask"]
    cx = (m.sum(1) * grid).sum(1) / m.sum((1, 2))
    cy = (m.sum(2) * grid).sum(1) / m.sum((1, 2))
    ring_or_crescent = (labels == 1) | (labels == 6)           # not centred on their centre of mass
    err = (torch.stack([cx, cy], 1) - factors["centre"]).abs().max(1).values
    assert (err[~ring_or_crescent] < 0.15).all()
    images_40 = data.load_images("shapes", "test", n=40)
    f = shape_factors("test", n=40)
    assert len(f["scale"]) == len(images_40) == 40
    again = shape_factors("test", n=40)
    again["scale"] += 1                                        # copies: the cache is never changed
    assert torch.equal(shape_factors("test", n=40)["scale"], f["scale"])
    with pytest.raises(ValueError, match="split must be one of"):
        shape_factors("unlabeled")
