import pytest
import torch

from course_utils import augment, evaluate, models, protocols
from course_utils.lessons import nb08
from course_utils.data import ImageData
from course_utils.methods import colourisation, pretext
from course_utils.methods.heads import ProjectedEncoder, ProjectionHead


def _tiny_data(n=48, size=16, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    images = (torch.rand(n, 3, size, size, generator=g) * 60).to(torch.uint8)
    images[labels == 0, :, :size // 2] += 150        # each class has a different bright region
    images[labels == 1, 1] += 150
    images[labels == 2, :, :, size // 2:] += 150
    return ImageData(images, labels.long(), [f"c{i}" for i in range(classes)], "tiny")


def _clustered_features(n=60, classes=3, d=8, seed=0, spread=0.2):
    centres = torch.randn(classes, d, generator=torch.Generator().manual_seed(123)) * 3  # shared by all calls
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    return centres[y] + spread * torch.randn(n, d, generator=g), y


# ---------------------------------------------------------------- few labels

def test_label_fraction_indices_is_class_balanced_and_reproducible():
    labels = torch.cat([torch.zeros(90), torch.ones(9), torch.full((3,), 2.0)]).long()
    idx = protocols.label_fraction_indices(labels, 0.1, seed=0)
    counts = torch.bincount(labels[idx], minlength=3).tolist()
    assert counts == [9, 1, 1]                                        # round(0.1 n_c), at least 1 each
    assert idx.dtype == torch.long and len(idx.unique()) == len(idx) and torch.equal(idx, idx.sort().values)
    assert torch.equal(idx, protocols.label_fraction_indices(labels, 0.1, seed=0))
    assert not torch.equal(idx, protocols.label_fraction_indices(labels, 0.1, seed=1))
    assert torch.equal(protocols.label_fraction_indices(labels, 1.0), torch.arange(102))


def test_label_fraction_indices_skips_unlabelled_and_rejects_bad_input():
    labels = torch.tensor([0, 1, -1, 0, 1, -1, 0, 1])
    idx = protocols.label_fraction_indices(labels, 1.0)
    assert (labels[idx] >= 0).all() and len(idx) == 6
    for fraction in (0, -0.1, 1.01):
        with pytest.raises(ValueError, match="fraction"):
            protocols.label_fraction_indices(labels, fraction)
    with pytest.raises(ValueError, match="1-D"):
        protocols.label_fraction_indices(labels.view(2, 4), 0.5)
    with pytest.raises(ValueError, match="no labelled"):
        protocols.label_fraction_indices(torch.full((4,), -1), 0.5)


def test_few_label_curve_uses_the_subsets():
    ftr, ytr = _clustered_features(90)
    fte, yte = _clustered_features(30, seed=1)
    curve = protocols.few_label_curve(ftr, ytr, fte, yte, fractions=(0.05, 1.0), probe_epochs=5)
    assert list(curve) == [0.05, 1.0] and curve[1.0] == 1.0            # clusters: separable
    knn = protocols.few_label_curve(ftr, ytr, fte, yte, fractions=(0.05,), protocol="knn", k=1)
    idx = protocols.label_fraction_indices(ytr, 0.05)
    assert knn[0.05] == evaluate.knn_accuracy(ftr[idx], ytr[idx], fte, yte, k=1)
    with pytest.raises(ValueError, match="protocol"):
        protocols.few_label_curve(ftr, ytr, fte, yte, protocol="svm")


def test_knn_k_curve_matches_knn_accuracy_and_checks_ks():
    ftr, ytr = _clustered_features(60)
    fte, yte = _clustered_features(20, seed=1)
    curve = protocols.knn_k_curve(ftr, ytr, fte, yte, ks=(1, 7))
    assert curve == {k: evaluate.knn_accuracy(ftr, ytr, fte, yte, k=k) for k in (1, 7)}
    for bad in ((), (0, 5), (2.5,)):
        with pytest.raises(ValueError, match="ks"):
            protocols.knn_k_curve(ftr, ytr, fte, yte, ks=bad)


# ---------------------------------------------------------------- fine-tuning

def test_fine_tune_leaves_the_encoder_alone_and_learns(tmp_path):
    train_d, test_d = _tiny_data(48), _tiny_data(24, seed=1)
    torch.manual_seed(0)
    enc = models.SmallCNN(width=4)
    before = protocols.state_fingerprint(enc)
    out = protocols.fine_tune(enc, train_d, test_d, epochs=8, lr=5e-3, batch_size=16, device="cpu",
                              checkpoint=tmp_path / "ft.pt")
    assert protocols.changed_entries(enc, before) == []                # the original is untouched
    assert out["n_labels"] == 48 and out["seconds"] > 0
    assert out["accuracy"] > 0.6                                       # an easy task: chance is 1/3
    assert protocols.changed_entries(out["model"].encoder, before)    # the copy was trained
    few = protocols.fine_tune(enc, train_d, test_d, epochs=1, fraction=0.25, batch_size=16, device="cpu")
    assert few["n_labels"] == 12 and out["plan"]["epochs"] == 8
    budgeted = protocols.fine_tune(enc, train_d, test_d, minutes=0.01, fraction=0.25, batch_size=4, device="cpu")
    assert budgeted["plan"]["budget_s"] == pytest.approx(0.6) and budgeted["plan"]["epochs"] >= 1
    with pytest.raises(ValueError, match="forward_features"):
        protocols.fine_tune(torch.nn.Linear(2, 2), train_d, test_d, epochs=1)


def test_classifier_accuracy_restores_mode():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 16 * 16, 3)).train()
    acc = protocols.classifier_accuracy(model, _tiny_data(12))
    assert 0 <= acc <= 1 and model.training


# ---------------------------------------------------------------- pitfalls

def test_bn_train_mode_features_differ_and_would_change_the_encoder():
    torch.manual_seed(0)
    enc = models.SmallCNN(width=4).eval()
    d = _tiny_data(32)
    ok, _ = evaluate.extract_features(enc, d)
    before = protocols.state_fingerprint(enc)
    bad, y, changed = protocols.features_bn_train_mode(enc, d, batch_size=8)
    assert changed and bad.shape == ok.shape and not torch.allclose(bad, ok, atol=1e-3)
    assert protocols.changed_entries(enc, before) == [] and not enc.training  # the real one is untouched
    # the features of one image depend on which images share its batch
    sorted_feats, ys, _ = protocols.features_bn_train_mode(enc, d, batch_size=8, sort_by_label=True)
    assert torch.equal(ys, d.labels.sort(stable=True).values)
    order = torch.argsort(d.labels, stable=True)
    assert not torch.allclose(sorted_feats, bad[order], atol=1e-3)


def test_augmented_features_are_reproducible_and_differ_from_clean():
    torch.manual_seed(0)
    enc = models.SmallCNN(width=4).eval()
    d = _tiny_data(16)
    t = augment.simclr_augment(16)
    a, y = protocols.augmented_features(enc, d, t, seed=3)
    b, _ = protocols.augmented_features(enc, d, t, seed=3)
    clean, _ = evaluate.extract_features(enc, d)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, clean, atol=1e-3) and torch.equal(y, d.labels)


def test_weights_digest_follows_the_weights():
    torch.manual_seed(0)
    a, b = models.SmallCNN(width=4), models.SmallCNN(width=4)
    assert protocols.weights_digest(a) != protocols.weights_digest(b)
    b.load_state_dict(a.state_dict())
    assert protocols.weights_digest(a) == protocols.weights_digest(b)
    assert len(protocols.weights_digest(a)) == 10


def test_with_head_outputs_the_projection():
    enc, head = models.SmallCNN(width=4).eval(), ProjectionHead(32, 16, 8).eval()
    wrapped = ProjectedEncoder(enc, head)
    x = torch.rand(3, 3, 16, 16)
    assert wrapped.num_features == 8
    torch.testing.assert_close(wrapped.forward_features(x), head(enc.forward_features(x)))


def test_unnormalized_knn_is_dominated_by_length():
    # two classes in opposite directions; one long training vector of class 1 points a little
    # towards class 0's test point: cosine kNN ignores its length, the dot product does not
    train = torch.tensor([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.2], [0.2, 1.0]])
    train = train * torch.tensor([[1.], [1.], [1.], [50.]])
    labels = torch.tensor([0, 0, 1, 1])
    test = torch.tensor([[1.0, 0.05]])
    assert evaluate.knn_predict(train, labels, test, k=1).item() == 0
    assert protocols.knn_predict_unnormalized(train, labels, test, k=1, stable=True).item() == 1
    # naive weights overflow: every vote is inf and the argmax is meaningless
    sims = (test @ train.T).topk(3).values
    assert torch.isinf((sims / 0.07).exp()).any()
    with pytest.raises(ValueError, match="k"):
        protocols.knn_predict_unnormalized(train, labels, test, k=0)
    with pytest.raises(ValueError, match="temperature"):
        protocols.knn_predict_unnormalized(train, labels, test, temperature=0)


def test_unnormalized_knn_equals_cosine_on_unit_vectors():
    ftr, ytr = _clustered_features(40)
    fte, _ = _clustered_features(10, seed=1)
    ftr, fte = torch.nn.functional.normalize(ftr, dim=1), torch.nn.functional.normalize(fte, dim=1)
    assert torch.equal(protocols.knn_predict_unnormalized(ftr, ytr, fte, k=5),
                       evaluate.knn_predict(ftr, ytr, fte, k=5))


# ---------------------------------------------------------------- t-SNE and plots

def test_tsne_embedding_shape_and_bad_input():
    feats, y = _clustered_features(30, d=5)
    xy = nb08.tsne_embedding(feats, perplexity=5)
    assert xy.shape == (30, 2)
    fig = nb08.plot_feature_maps({"a": (xy, y), "b": (xy, y)}, ["x", "y", "z"])
    assert fig.axes[0].get_title() == "a" and fig.axes[0].get_xlabel() == "t-SNE 1"
    with pytest.raises(ValueError):
        nb08.tsne_embedding(torch.rand(3, 4))
    with pytest.raises(ValueError, match="empty"):
        nb08.plot_feature_maps({}, ["x"])


def test_plot_curves_labels():
    fig = nb08.plot_curves({"a": {0.01: 0.3, 1.0: 0.8}}, title="t", xlabel="fraction", chance=0.1)
    ax = fig.axes[0]
    assert ax.get_title() == "t" and ax.get_xlabel() == "fraction" and ax.get_xscale() == "log"


# ---------------------------------------------------------------- loading the course's encoders

def test_load_or_train_loads_saved_methods_and_wraps_colourisation(tmp_path):
    torch.manual_seed(0)
    rotation = pretext.RotationPrediction(models.build_encoder("small_cnn", width=4))
    rotation.save(nb08.encoder_path("rotation", tmp_path), method="rotation", train_seconds=12.5)
    colour = colourisation.Colorization(models.build_encoder("small_cnn", width=4))
    colour.save(nb08.encoder_path("colorization", tmp_path), train_seconds=3.0, input="luminance")
    kw = dict(encoder_name="small_cnn", encoder_kwargs={"width": 4}, epochs=1, directory=tmp_path,
              device="cpu")
    d = _tiny_data(16)
    rot = nb08.load_or_train("rotation", d, **kw)
    assert rot.source == "saved" and rot.train_seconds == 12.5 and rot.label == "rotation"
    assert isinstance(rot.method, pretext.RotationPrediction)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(rot.encoder.forward_features(x), rotation.encoder.eval().forward_features(x))
    col = nb08.load_or_train("colorization", d, **kw)
    assert isinstance(col.encoder, colourisation.GrayscaleInput)
    rnd = nb08.load_or_train("random", d, **kw)
    assert rnd.source == "untrained" and rnd.train_seconds == 0 and not rnd.encoder.training
    with pytest.raises(ValueError, match="name"):
        nb08.encoder_path("simsiam", tmp_path)


def test_load_saved_gives_the_later_notebooks_rows_only_once_they_are_saved(tmp_path):
    from course_utils.methods import cmc
    from course_utils.methods.barlow_twins import BarlowTwins

    assert nb08.load_saved("barlow_twins", device="cpu", directory=tmp_path) is None     # not run yet
    torch.manual_seed(0)
    bt = BarlowTwins(models.build_encoder("small_cnn", width=4), proj_hidden_dim=16, proj_dim=16)
    bt.save(nb08.encoder_path("barlow_twins", tmp_path), train_seconds=7.0, knn=0.5, linear=0.6)
    entry = nb08.load_saved("barlow_twins", device="cpu", directory=tmp_path)
    assert entry.source == "saved" and entry.train_seconds == 7.0 and entry.label == "Barlow Twins"
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(entry.encoder.forward_features(x), bt.encoder.eval().forward_features(x))

    c = cmc.CMC(models.build_encoder("small_cnn", width=4, in_channels=1), proj_hidden_dim=16, proj_dim=8)
    c.save(nb08.encoder_path("cmc", tmp_path))
    joint = nb08.load_saved("cmc", device="cpu", directory=tmp_path)
    assert isinstance(joint.encoder, cmc.JointEncoder)          # both views, as the CMC paper evaluates
    assert joint.encoder.forward_features(x).shape == (2, c.encoder.num_features + c.ab_encoder.num_features)
    with pytest.raises(ValueError, match="load_or_train"):
        nb08.load_saved("simclr", directory=tmp_path)
    later = nb08.load_later(device="cpu", directory=tmp_path)
    assert set(later) == {"barlow_twins", "cmc"}


@pytest.mark.parametrize("name", ["rotation", "context", "simclr"])
def test_load_or_train_trains_a_stand_in_once(tmp_path, name, capsys):
    kw = dict(encoder_name="small_cnn", encoder_kwargs={"width": 4}, epochs=1, batch_size=8,
              directory=tmp_path, device="cpu")
    d = _tiny_data(16, size=32)
    entry = nb08.load_or_train(name, d, **kw)
    assert entry.source == "stand-in" and entry.method is not None and entry.train_seconds > 0
    assert "stand-in" in capsys.readouterr().out
    assert (tmp_path / f"08_standin_{name}.pt").exists()
    again = nb08.load_or_train(name, d, **kw)                   # the checkpoint is reused
    for k, v in entry.encoder.state_dict().items():
        torch.testing.assert_close(again.encoder.state_dict()[k], v)


def test_build_stand_in_for_every_method():
    for name in nb08.METHODS[1:]:
        built = nb08.build_stand_in(name, "small_cnn", {"width": 4}, num_classes=3, image_size=32,
                                         vit_kwargs={"dim": 16, "depth": 1, "num_heads": 2})
        if built is None:      # a module another notebook adds; skipped with a note
            continue
        method, enc_name, _ = built
        out = method.training_step((torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 0])))
        loss = out["loss"] if isinstance(out, dict) else out
        assert torch.isfinite(loss), name
        assert enc_name == ("vit_tiny" if name == "mae" else "small_cnn")
    with pytest.raises(ValueError, match="unknown method"):
        nb08._make_method("dino", models.SmallCNN(width=4), 3, None, "shapes", 32)


def test_build_stand_in_follows_method_kwargs():
    kw = dict(encoder_name="small_cnn", encoder_kwargs={"width": 4}, num_classes=3, image_size=32)
    default, _, _ = nb08.build_stand_in("jigsaw", **kw)
    assert default.permutations.shape == (24, 4)                      # 2x2 on small images
    method, _, _ = nb08.build_stand_in(
        "jigsaw", **kw, method_kwargs={"jigsaw": dict(grid=3, num_permutations=10, tile_size=8, upscale=2)})
    assert method.permutations.shape == (10, 9)                       # notebook 01's gpu puzzle
    puzzle, index = method.puzzle(torch.rand(2, 3, 32, 32))
    assert puzzle.shape[:2] == (2, 9) and puzzle.shape[-1] == 8
    context, _, _ = nb08.build_stand_in("context", **kw, method_kwargs={"context": dict(tile_size=8)})
    out = context.training_step((torch.rand(4, 3, 32, 32), torch.zeros(4, dtype=torch.long)))
    assert torch.isfinite(out["loss"] if isinstance(out, dict) else out)
    with pytest.raises(ValueError, match="unknown method names"):
        nb08.build_stand_in("jigsaw", **kw, method_kwargs={"jigsw": {}})
    with pytest.raises(ValueError, match="pretext tasks"):
        nb08.build_stand_in("simclr", **kw, method_kwargs={"simclr": {"temperature": 0.5}})


def test_train_seconds_not_recorded_shows_as_missing():
    entry = nb08.Entry("jigsaw", models.SmallCNN(width=4), {})
    assert entry.train_seconds is None
    assert nb08.results_row(entry, {"kNN": 0.5}) == {"kNN": 0.5, "train s": None}
    assert nb08.Entry("random", models.SmallCNN(width=4), {"train_seconds": 0.0}).train_seconds == 0.0


def test_projection_head_from_checkpoint(tmp_path):
    from course_utils.methods.simclr import SimCLR
    from course_utils.train import train

    torch.manual_seed(0)
    method = SimCLR(models.build_encoder("small_cnn", width=4), transform=augment.simclr_augment(16),
                    proj_hidden_dim=16, proj_dim=8)
    train(method, _tiny_data(16), epochs=1, batch_size=8, device="cpu", progress=False,
          checkpoint=tmp_path / "03_simclr.pt")
    method.eval()
    enc = models.SmallCNN(width=4)
    enc.load_state_dict(method.encoder.state_dict())
    enc.eval()
    wrapped = nb08.projection_head_from_checkpoint(tmp_path / "03_simclr.pt", enc)
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(wrapped.forward_features(x), method.project(x))
    assert nb08.projection_head_from_checkpoint(tmp_path / "missing.pt", enc) is None
    other = models.SmallCNN(width=4)                                   # different weights: refused
    assert nb08.projection_head_from_checkpoint(tmp_path / "03_simclr.pt", other) is None
    torch.save({"model": method.state_dict()}, tmp_path / "old.pt")    # no config: an older file
    assert nb08.projection_head_from_checkpoint(tmp_path / "old.pt", enc) is None


def test_fractions_label_and_rounding_half_up():
    assert nb08.fractions_label(0.1) == "10%" and nb08.fractions_label(0.005) == "0.5%"
    entry = nb08.Entry("jigsaw", models.SmallCNN(width=4), {"train_seconds": 12.6})
    assert nb08.results_row(entry, {"kNN": 0.5}) == {"kNN": 0.5, "train s": 13}
    # 2.5 examples per class round up to 3 (Python's round() would give 2)
    assert protocols.label_fraction_indices(torch.arange(10) % 2, 0.5).numel() == 6


def test_encoder_with_head_from_a_stand_in_or_nothing(tmp_path):
    from course_utils.methods.simclr import SimCLR

    torch.manual_seed(0)
    method = SimCLR(models.SmallCNN(width=4), proj_hidden_dim=16, proj_dim=8).eval()
    entry = nb08.Entry("simclr", method.encoder, {}, "stand-in", method)
    wrapped = nb08.encoder_with_head(entry, None)
    x = torch.rand(2, 3, 16, 16)
    assert wrapped.num_features == 8
    torch.testing.assert_close(wrapped.forward_features(x), method.project(x))
    saved = nb08.Entry("simclr", method.encoder, {}, "saved")
    assert nb08.encoder_with_head(saved, tmp_path / "missing.pt") is None
    assert nb08.encoder_with_head(None, tmp_path / "missing.pt") is None
    assert nb08.encoder_with_head(saved, None) is None


def test_verdicts_read_the_table_of_this_run():
    entries = {n: nb08.Entry(n, torch.nn.Identity()) for n in ("random", "supervised", "simclr", "rotation")}
    results = {"random": {"kNN": 0.30, "linear": 0.35, "lin 10%": 0.30, "ft 10%": 0.40},
               "supervised": {"kNN": 0.95, "linear": 0.96, "lin 10%": 0.93, "ft 10%": 0.94},
               "simclr": {"kNN": 0.80, "linear": 0.82, "lin 10%": 0.78, "ft 10%": 0.60},
               "rotation": {"kNN": 0.31, "linear": 0.355, "lin 10%": 0.30, "ft 10%": 0.31}}
    lines = nb08.verdicts(results, entries, n_test=2000)
    text = "\n".join(lines)
    assert "best under kNN: supervised (0.950)" in text
    assert "supervised beats the best SSL method (SimCLR) by 15.0 points of kNN accuracy" in text
    assert "SimCLR beats the random encoder by 47.0 points of linear-probe accuracy" in text
    assert "rotation and the random encoder are within the noise" in text
    assert "SimCLR fine-tuned is below its frozen probe by 18.0 points" in text
    assert "random encoder fine-tuned beats its frozen probe by 10.0 points" in text
