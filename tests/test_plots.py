import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from course_utils import plots  # noqa: E402


def test_figures_have_titles_and_labels():
    fig = plots.show_images(torch.randint(0, 255, (5, 3, 8, 8), dtype=torch.uint8), torch.arange(5), title="x")
    assert fig._suptitle.get_text() == "x"
    h = {"step_loss": [3.0 - 0.01 * i for i in range(50)], "eval": [{"epoch": 1, "knn": 0.3}, {"epoch": 2, "knn": 0.5}]}
    fig = plots.plot_history(h)
    assert fig.axes[0].get_xlabel() == "step" and fig.axes[1].get_ylabel() == "accuracy"
    fig = plots.plot_results({"a": {"knn": 0.2, "linear": 0.3}, "b": {"knn": 0.5}}, chance=0.125)
    assert fig.axes[0].get_title() == "Comparison"
    fig = plots.show_views(torch.rand(2, 3, 8, 8), [torch.rand(2, 3, 8, 8)] * 3)
    assert len(fig.axes) == 8
    with pytest.raises(ValueError, match="B, C, H, W"):
        plots.show_images(torch.rand(3, 8, 8))


def test_results_table_text(capsys):
    text = plots.results_table({"raw pixels": {"knn": 0.25, "linear": 0.3}})
    assert "raw pixels" in text and "0.250" in text


def test_plot_history_keys_choose_the_metrics_on_one_scale():
    h = {"step_loss": [1.0] * 20, "eval": [{"epoch": 1, "knn": 0.3, "erank": 12.0}, {"epoch": 2, "knn": 0.5, "erank": 9.0}]}
    fig = plots.plot_history(h, keys=["erank"], ylabel="effective rank")
    labels = [line.get_label() for line in fig.axes[1].get_lines()]
    assert labels == ["erank"] and fig.axes[1].get_ylabel() == "effective rank"
    with pytest.raises(ValueError, match="keys \\['std'\\] are not in"):
        plots.plot_history(h, keys=["std"])


def test_plot_history_draws_what_the_training_steps_logged():
    h = {"step_loss": [1.0] * 8, "eval": [{"epoch": 2, "knn": 0.4}],
         "epoch_logs": {"pretext_accuracy": [0.2, 0.6], "momentum": [0.99, 0.999]}}
    fig = plots.plot_history(h, logs="pretext_accuracy")
    lines = {line.get_label(): line for line in fig.axes[1].get_lines()}
    assert set(lines) == {"knn", "pretext_accuracy (training)"}
    assert list(lines["pretext_accuracy (training)"].get_ydata()) == [0.2, 0.6]
    only_logs = plots.plot_history({"step_loss": [1.0] * 8, "epoch_logs": h["epoch_logs"]}, logs=["momentum"])
    assert len(only_logs.axes) == 2
    with pytest.raises(ValueError, match="logs \\['pretext'\\] are not in the history's epoch_logs"):
        plots.plot_history(h, logs=["pretext"])
