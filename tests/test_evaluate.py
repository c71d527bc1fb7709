import copy

import pytest
import torch
import torch.nn as nn

from course_utils import evaluate as ev
from course_utils.models import SmallCNN


def clusters(n_per=30, d=8, seed=0, spread=0.3):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(3, d, generator=g) * 3
    y = torch.arange(3).repeat_interleave(n_per)
    return centres[y] + spread * torch.randn(len(y), d, generator=g), y


def test_knn_on_separable_clusters():
    xtr, ytr = clusters(seed=0)
    xte, yte = xtr + 0.01, ytr
    assert ev.knn_accuracy(xtr, ytr, xte, yte, k=5) == 1.0


def test_knn_matches_a_slow_reference():
    xtr, ytr = clusters(spread=3.0, seed=1)
    xte, _ = clusters(spread=3.0, seed=2)
    fast = ev.knn_predict(xtr, ytr, xte, k=7, temperature=0.1, chunk_size=4)
    a = torch.nn.functional.normalize(xtr, dim=1)
    b = torch.nn.functional.normalize(xte, dim=1)
    slow = []
    for q in b:
        sims = torch.stack([q @ r for r in a])
        idx = sims.argsort(descending=True)[:7]
        votes = torch.zeros(3)
        for i in idx:
            votes[ytr[i]] += torch.exp(sims[i] / 0.1)
        slow.append(votes.argmax())
    assert torch.equal(fast, torch.stack(slow))


def test_knn_is_scale_invariant():
    """Cosine kNN: scaling one training point does not change its vote."""
    xtr, ytr = clusters(spread=2.0)
    xte, yte = clusters(spread=2.0, seed=5)
    scaled = xtr * torch.rand(len(xtr), 1) * 10
    assert ev.knn_accuracy(xtr, ytr, xte, yte) == ev.knn_accuracy(scaled, ytr, xte, yte)


def test_knn_small_sets_and_bad_inputs():
    xtr, ytr = clusters(n_per=1)
    # k larger than the set: every training point votes, as with k = N; each query's own
    # point (cosine 1, weight exp(1/0.07)) outvotes the other classes
    assert ev.knn_accuracy(xtr, ytr, xtr, ytr, k=50) == ev.knn_accuracy(xtr, ytr, xtr, ytr, k=len(xtr)) == 1.0
    with pytest.raises(ValueError, match="k must"):
        ev.knn_accuracy(xtr, ytr, xtr, ytr, k=0)
    with pytest.raises(ValueError, match="width"):
        ev.knn_accuracy(xtr, ytr, xtr[:, :2], ytr)
    with pytest.raises(ValueError, match="one label"):
        ev.knn_accuracy(xtr, ytr[:1], xtr, ytr)
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        ev.knn_accuracy(xtr.flatten(), ytr, xtr, ytr)


def test_linear_probe_separates_clusters():
    xtr, ytr = clusters(seed=0)
    xte, yte = clusters(seed=0)
    res = ev.linear_probe(xtr, ytr, xte + 0.05, yte, epochs=30)
    assert res["accuracy"] == 1.0 and res["train_accuracy"] == 1.0


def test_linear_probe_depends_on_its_seed_only():
    g = torch.Generator().manual_seed(0)
    x, xt = torch.randn(200, 6, generator=g), torch.randn(100, 6, generator=g)
    y, yt = torch.randint(0, 3, (200,), generator=g), torch.randint(0, 3, (100,), generator=g)
    probe = dict(epochs=2, min_steps=1)
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    first = ev.linear_probe(x, y, xt, yt, **probe)["classifier"].weight
    assert torch.equal(torch.rand(1), expected)              # the caller's random stream is untouched
    torch.manual_seed(123)                                   # another state of the global RNG
    torch.testing.assert_close(ev.linear_probe(x, y, xt, yt, **probe)["classifier"].weight, first)
    other = ev.linear_probe(x, y, xt, yt, **probe, seed=1)["classifier"].weight
    assert not torch.allclose(first, other)


def test_linear_probe_chance_on_random_labels():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 5, generator=g)
    y = torch.randint(0, 4, (300,), generator=g)
    xt, yt = torch.randn(300, 5, generator=g), torch.randint(0, 4, (300,), generator=g)
    assert ev.linear_probe(x, y, xt, yt, epochs=20)["accuracy"] < 0.45


def test_extraction_leaves_the_backbone_unchanged():
    """Evaluation must not move BatchNorm statistics, weights, or the train/eval mode."""
    enc = SmallCNN(width=8)
    enc.train()
    before = copy.deepcopy(enc.state_dict())
    data = (torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8), torch.randint(0, 3, (40,)))
    f, y = ev.extract_features(enc, data, batch_size=16)
    assert f.shape == (40, 64) and torch.equal(y, data[1])
    assert enc.training
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k
    res = ev.evaluate_encoder(enc, data, data, probe_epochs=2)
    assert set(res) == {"knn", "linear"}
    for k, v in enc.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_features_use_eval_mode_batchnorm():
    """Features of one image must not depend on which other images share its batch."""
    enc = SmallCNN(width=8)
    enc(torch.rand(16, 3, 32, 32))  # move BN running stats away from init
    x = (torch.rand(8, 3, 32, 32) * 255).to(torch.uint8)
    f_all, _ = ev.extract_features(enc, (x, torch.zeros(8, dtype=torch.long)), batch_size=8)
    f_one, _ = ev.extract_features(enc, (x[:1], torch.zeros(1, dtype=torch.long)), batch_size=1)
    torch.testing.assert_close(f_all[:1], f_one)


def test_extract_needs_a_backbone():
    with pytest.raises(ValueError, match="forward_features"):
        ev.extract_features(nn.Linear(3, 3), (torch.zeros(2, 3), torch.zeros(2)))


def test_baselines_are_reused_only_on_the_same_data(tmp_path, capsys):
    from course_utils.data import load_images

    path = tmp_path / "00_baselines.pt"
    train_a, test_a = load_images("digits", "train"), load_images("digits", "test")
    results = {"raw pixels": {"knn": 0.5, "linear": 0.6}}
    ev.save_baselines(results, train_a, test_a, path)
    assert ev.load_baselines(train_a, test_a, path) == {"raw pixels (notebook 00)": results["raw pixels"]}
    assert ev.load_baselines(train_a, test_a, path, suffix="") == results
    assert ev.load_baselines(train_a.subset(100), test_a, path) == {}   # another size
    assert "measured on" in capsys.readouterr().out
    assert ev.load_baselines(train_a, test_a, tmp_path / "missing.pt") == {}
    torch.save(results, path)                                                  # an old-style file
    assert ev.load_baselines(train_a, test_a, path) == {}


@pytest.mark.parametrize("kw, message", [({"chunk_size": 0}, "chunk_size"), ({"temperature": 0.0}, "temperature"),
                                         ({"k": 0}, "k must be")])
def test_knn_bad_arguments_are_refused(kw, message):
    f, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match=message):
        ev.knn_predict(f, y, f, **kw)


def test_linear_probe_needs_an_epoch():
    f, y = torch.randn(10, 4), torch.arange(10) % 2
    with pytest.raises(ValueError, match="epochs"):
        ev.linear_probe(f, y, f, y, epochs=0)
