import pytest
import torch

from course_utils import runtime


def test_get_device_is_cpu_here_or_better():
    assert runtime.get_device().type in ("cpu", "cuda", "mps")
    assert runtime.get_device("cpu").type == "cpu"


def test_get_device_bad_preference():
    with pytest.raises(ValueError, match="prefer"):
        runtime.get_device("tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_get_device_missing_cuda_is_clear():
    with pytest.raises(RuntimeError, match="no CUDA"):
        runtime.get_device("cuda")


def test_seed_everything_repeats():
    runtime.seed_everything(3)
    a = torch.rand(3)
    runtime.seed_everything(3)
    assert torch.equal(a, torch.rand(3))
    with pytest.raises(ValueError, match="seed"):
        runtime.seed_everything(-1)


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "CPU ")
    assert runtime.get_profile() == "cpu"
    monkeypatch.setenv("COURSE_PROFILE", "turbo")
    with pytest.raises(ValueError, match="COURSE_PROFILE"):
        runtime.get_profile()
    monkeypatch.delenv("COURSE_PROFILE")
    expected = "gpu" if runtime.get_device().type != "cpu" else "cpu"
    assert runtime.get_profile() == expected


def test_choose_settings(capsys):
    s = runtime.choose_settings({"fast": {"epochs": 1}, "cpu": {"epochs": 10}, "gpu": {"epochs": 100}}, "cpu")
    assert s.epochs == 10 and s.profile == "cpu"
    assert "epochs" in capsys.readouterr().out
    with pytest.raises(ValueError, match="missing"):
        runtime.choose_settings({"fast": {"epochs": 1}}, "fast")
    with pytest.raises(ValueError, match="keys"):
        runtime.choose_settings({"fast": {"a": 1}, "cpu": {"b": 1}, "gpu": {"a": 1}}, "fast")


def test_setup_prints_and_unpacks(capsys, monkeypatch):
    monkeypatch.setenv("COURSE_PROFILE", "fast")
    device, profile = runtime.setup(seed=1)
    out = capsys.readouterr().out
    assert profile == "fast" and "torch" in out and "profile" in out
    assert isinstance(device, torch.device)


def test_autocast_is_a_no_op_on_cpu():
    with runtime.autocast("cpu"):
        y = torch.ones(2, 2) @ torch.ones(2, 2)
    assert y.dtype == torch.float32


def test_timer_measures():
    with runtime.Timer() as t:
        sum(range(1000))
    assert t.seconds >= 0


def test_runs_dir_per_profile(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_RUNS", str(tmp_path))
    assert runtime.runs_dir("fast") == tmp_path / "fast"
    assert (tmp_path / "fast").is_dir()
