"""Notebook 09's helpers: the decorrelated batch is what it claims, the fixed views leave the
random stream alone, the monitor's cross-correlation and meters on analytic cases, spectra
and effective ranks in range, a monitor record holding a tensor trains, and the figures draw."""
import matplotlib
import pytest
import torch

from course_utils import data
from course_utils.lessons import nb09
from course_utils.methods.barlow_twins import BarlowTwins
from course_utils.models import build_encoder
from course_utils.train import train

matplotlib.use("Agg")


def bt(width=16):
    torch.manual_seed(0)
    return BarlowTwins(build_encoder("small_cnn", width=4), proj_hidden_dim=width, proj_dim=width, lambd=None,
                       batch_size=16, transform=lambda x: x)


@pytest.mark.parametrize("B, D", [(8, 4), (16, 15), (64, 16)])
def test_decorrelated_has_zero_mean_unit_variance_and_no_correlation(B, D):
    z = nb09.decorrelated(B, D)
    assert z.shape == (B, D) and set(z.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(z.mean(0), torch.zeros(D))
    torch.testing.assert_close(z.T @ z / B, torch.eye(D))


@pytest.mark.parametrize("B, D", [(12, 4), (8, 8), (8, 0), (1, 1)])
def test_decorrelated_rejects_shapes_it_cannot_make(B, D):
    with pytest.raises(ValueError, match="power of 2"):
        nb09.decorrelated(B, D)


def test_fixed_views_are_repeatable_and_leave_the_random_stream_alone():
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    noisy = lambda t: t + torch.rand_like(t)                    # a random "augmentation"
    torch.manual_seed(5)
    a1, a2 = nb09.fixed_views(x, noisy)
    after = torch.rand(3)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.testing.assert_close(after, expected)                 # the stream did not move
    b1, b2 = nb09.fixed_views(x, noisy)
    torch.testing.assert_close(a1, b1)
    torch.testing.assert_close(a2, b2)
    assert not torch.allclose(a1, a2)                           # two different draws
    assert a1.dtype == torch.float32 and a1.max() <= 2.0         # uint8 became [0, 1] before the transform


def test_spread_is_the_raw_std_along_the_batch():
    assert nb09.spread(torch.ones(10, 4) * 7) == 0.0
    g = torch.Generator().manual_seed(0)
    z = 3 * torch.randn(4096, 8, generator=g) + 100              # a large offset does not matter
    assert abs(nb09.spread(z) - 3) < 0.1


def test_monitor_on_identical_views_gives_a_unit_diagonal():
    m, x = bt(), torch.rand(32, 3, 32, 32)
    out = nb09.redundancy_monitor(x, x.clone(), block=8)(m)
    assert out["c_block"].shape == (8, 8)
    assert abs(out["on_diag"] - 1) < 1e-3                       # a view agrees with itself
    assert 0 < out["off_diag"] < 1
    assert 1 <= out["erank"] <= 16 and 1 <= out["erank_h"] <= m.encoder.num_features
    assert out["spread"] > 0


def test_monitor_on_unrelated_views_gives_a_lower_diagonal():
    m = bt()
    out = nb09.redundancy_monitor(torch.rand(32, 3, 32, 32), torch.rand(32, 3, 32, 32))(m)
    assert out["on_diag"] < 0.9


def test_spectra_are_normalised_and_ranks_in_range():
    m = bt()
    s = nb09.spectra(m, torch.rand(20, 3, 32, 32))
    assert s["z"].shape == (16,) and s["h"].shape == (min(20, m.encoder.num_features),)
    assert s["z"][0].item() == pytest.approx(1.0) and (s["z"][1:] <= s["z"][:-1] + 1e-6).all()
    assert 1 <= s["erank_z"] <= 16


def test_training_with_a_monitor_that_records_a_tensor_saves_and_resumes(tmp_path):
    d = data.load_images("shapes", "train", n=64)
    x = d.images[:16].float().div(255)
    path = tmp_path / "bt.pt"
    h = train(bt(), d, epochs=2, batch_size=16, checkpoint=path, eval_fn=nb09.redundancy_monitor(x, x, block=4),
              progress=True)
    assert [e["epoch"] for e in h["eval"]] == [1, 2] and h["eval"][-1]["c_block"].shape == (4, 4)
    again = train(bt(), d, epochs=2, batch_size=16, checkpoint=path, eval_fn=nb09.redundancy_monitor(x, x, block=4))
    torch.testing.assert_close(again["eval"][-1]["c_block"], h["eval"][-1]["c_block"])   # loaded, not retrained


def test_figures_draw_and_bad_histories_are_named():
    m, x = bt(), torch.rand(16, 3, 32, 32)
    monitor = nb09.redundancy_monitor(x, x, block=4)
    history = {"eval": [{"epoch": e, **monitor(m)} for e in range(3)], "logs": {"invariance": [1.0, 0.5, 0.2]}}
    assert nb09.plot_correlations(history) is not None
    assert nb09.plot_meters({"a": history}, dim=16) is not None
    assert nb09.plot_terms(history, ["invariance"], {"invariance": 1.0}) is not None
    assert nb09.plot_spectra({"BT": nb09.spectra(m, x)}) is not None
    with pytest.raises(ValueError, match="redundancy_monitor"):
        nb09.plot_correlations({"eval": [{"epoch": 1, "knn": 0.5}]})
    with pytest.raises(ValueError, match="step logs"):
        nb09.plot_terms(history, ["covariance"])
