"""The figure helpers of notebooks 05 and 06 (lessons.nb05, lessons.nb06) draw what they
are given, with titles and labels."""
import math

import matplotlib

matplotlib.use("Agg")

import torch  # noqa: E402

from course_utils.lessons import nb05, nb06  # noqa: E402


def test_plot_collapse_puts_runs_on_one_axis_of_steps():
    h = {"eval": [{"epoch": 0, "std": 0.1, "erank": 5.0, "knn": 0.2}, {"epoch": 2, "std": 0.05, "erank": 2.0, "knn": 0.3}]}
    fig = nb05.plot_collapse({"a": h, "b": h}, dim=16, steps_per_epoch={"a": 10, "b": 5})
    assert len(fig.axes) == 3 and fig.axes[2].get_title() == "kNN accuracy"
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["a"].get_xdata()) == [0, 20] and list(lines["b"].get_xdata()) == [0, 10]
    assert lines["1/sqrt(D)"].get_ydata()[0] == 1 / math.sqrt(16)


def test_show_reconstructions_one_row_per_kind():
    x = torch.rand(3, 3, 8, 8)
    fig = nb06.show_reconstructions(x, [("masked", x), ("reconstructed", x)], title="t")
    assert len(fig.axes) == 9 and fig._suptitle.get_text() == "t"
    assert fig.axes[3].get_ylabel() == "masked"
