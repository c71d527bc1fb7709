"""The runner every notebook trains with (lessons.common): prepare's data and baselines,
checkpoints named after every setting, a rerun that loads, a changed setting that trains
anew beside the old run, and the saved method notebook 08 reads."""
from types import SimpleNamespace

import pytest
import torch

from course_utils import augment
from course_utils.lessons.common import Lesson, prepare
from course_utils.methods.base import load
from course_utils.methods.simclr import SimCLR


def _settings(**kw):
    return SimpleNamespace(**{"dataset": "shapes", "n_train": 64, "n_test": 32, "encoder": "small_cnn",
                              "encoder_kwargs": {"width": 4}, "epochs": 1, "batch_size": 16, "lr": 1e-3,
                              "eval_every": 1, "probe_epochs": 2} | kw)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    return tmp_path


def _simclr(lesson, temperature=0.5):
    torch.manual_seed(0)
    return SimCLR(lesson.new_encoder(), transform=augment.simclr_augment(32), temperature=temperature,
                  proj_hidden_dim=16, proj_dim=8)


def test_prepare_loads_the_data_and_measures_the_baselines(runs):
    lesson = prepare(_settings(), torch.device("cpu"), notebook="03")
    assert (len(lesson.train_data), len(lesson.test_data), lesson.num_classes) == (64, 32, 8)
    assert set(lesson.results) == {"raw pixels", "random encoder"}
    torch.manual_seed(0)
    again = lesson.evaluate(lesson.new_encoder())                 # the same random encoder, measured again
    assert again == lesson.results["random encoder"]
    assert lesson.new_encoder().spec == {"name": "small_cnn", "kwargs": {"width": 4}}


def test_run_trains_then_loads_and_a_changed_setting_trains_anew(runs, capsys):
    lesson = prepare(_settings(), torch.device("cpu"), notebook="03", baselines=False)
    first = lesson.run("simclr", _simclr(lesson))
    assert first.checkpoint.exists() and first.checkpoint.name.startswith("03_simclr_")
    assert set(first.metrics) == {"knn", "linear"} and first.seconds > 0
    assert len(first.history["eval"]) == 1 and "knn" in first.history["eval"][0]   # the monitor ran
    again = lesson.run("simclr", _simclr(lesson))
    assert again.checkpoint == first.checkpoint and again.history["step_loss"] == first.history["step_loss"]
    assert "resumed" in capsys.readouterr().out
    for changed in (lesson.run("simclr", _simclr(lesson, temperature=0.2), evaluate=False),
                    lesson.run("simclr", _simclr(lesson), lr=3e-3, evaluate=False),
                    lesson.run("simclr", _simclr(lesson), lesson.train_data.subset(32), evaluate=False)):
        assert changed.checkpoint != first.checkpoint and changed.metrics is None
    assert first.checkpoint.exists() and len(list(runs.rglob("03_simclr_*.pt"))) == 4   # nothing overwritten


def test_result_save_is_what_notebook_08_loads(runs):
    prepared = prepare(_settings(), torch.device("cpu"), "03", baselines=False)
    lesson = Lesson(_settings(), torch.device("cpu"), "03", prepared.train_data, prepared.test_data)
    result = lesson.run("simclr", _simclr(lesson), monitor=None)
    path = result.save("simclr", note="x")
    assert path.name == "simclr_method.pt"
    back = load(path)
    assert back.info == {"train_seconds": result.seconds, **result.metrics, "note": "x"}
    x = torch.rand(2, 3, 32, 32)
    torch.testing.assert_close(back(x), result.method.eval()(x))


def test_margins_are_the_points_above_each_baseline():
    lesson = Lesson(_settings(), torch.device("cpu"), "99")
    lesson.results = {"raw pixels": {"knn": 0.25, "linear": 0.30}, "random encoder": {"knn": 0.2, "linear": 0.5},
                      "supervised": {"knn": 0.9, "linear": 0.9}}
    text = lesson.margins("SimCLR", {"knn": 0.75, "linear": 0.80})
    assert "SimCLR minus raw pixels: kNN +50.0 points, linear +50.0" in text
    assert "SimCLR minus random encoder: kNN +55.0 points, linear +30.0" in text and "supervised" not in text


def test_verdict_reads_two_accuracies_against_the_noise():
    from course_utils.lessons.common import noise_points, verdict

    assert noise_points(0.5, 2000) == pytest.approx(200 * (2 * 0.25 / 2000) ** 0.5)
    assert noise_points(1.0, 100) == 0.0 and noise_points(0.5, 100) > noise_points(0.5, 10_000)
    assert "beats" in verdict("A", 0.80, "B", 0.50, "kNN accuracy", 2000)
    assert "30.0 points" in verdict("A", 0.80, "B", 0.50, "kNN accuracy", 2000)
    assert "is below" in verdict("A", 0.40, "B", 0.50, "kNN accuracy", 2000)
    assert "within the noise" in verdict("A", 0.51, "B", 0.50, "kNN accuracy", 2000)     # ±3.2 points
    assert "beats" in verdict("A", 0.51, "B", 0.50, "kNN accuracy", 1_000_000)           # more images, less noise
    with pytest.raises(ValueError, match="n_test"):
        noise_points(0.5, 0)
