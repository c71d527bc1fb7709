"""The benchmark scripts run end to end on tiny settings, in this process (so that a
broken import or a changed API shows here with a traceback), and print their figures.
(Their speed is measured by running them, never asserted in a test.)"""
import importlib.util
import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _load(script):
    spec = importlib.util.spec_from_file_location(f"benchmark_{script[:-3]}", ROOT / "benchmarks" / script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()     # a benchmark may set its own thread count
    yield
    torch.set_num_threads(threads)


def test_simclr_budget_prints_the_run_the_baselines_and_the_margins(capsys):
    results, seconds = _load("simclr_budget.py").main(
        ["--n-train", "128", "--n-test", "64", "--width", "4", "--minutes", "0.01", "--batch-size", "32",
         "--device", "cpu", "--threads", "1"])
    out = capsys.readouterr().out
    assert "of a 1 s budget" in out and "images/s" in out
    assert set(results) == {"raw pixels", "random small_cnn", "SimCLR"} and seconds > 0
    margin = results["SimCLR"]["knn"] - results["raw pixels"]["knn"]
    assert f"SimCLR minus raw pixels: kNN {margin:+.3f}" in out
    for name, r in results.items():
        assert name in out and f"{r['knn']:.3f}" in out      # the printed figures are the computed ones
        assert 0 < r["knn"] <= 1 and 0 < r["linear"] <= 1


def test_simclr_epoch_prints_throughput(capsys):
    r = _load("simclr_epoch.py").main(["--model", "small_cnn", "--width", "4", "--batch-size", "16", "--steps",
                                       "2", "--warmup", "1", "--data", "shapes", "--device", "cpu"])
    out = capsys.readouterr().out
    assert f"{r['images_per_s']:.0f} images/s" in out and r["images_per_s"] > 0
    assert r["epoch_s"] == pytest.approx(50_000 / r["images_per_s"]) and not r["channels_last"]
    assert f"{r['flops'] / 1e9:.1f} GFLOP" in out
    h100 = r["estimates"]["H100 SXM (bfloat16)"]
    assert h100 == pytest.approx(r["flops"] * 50_000 / 16 / (989e12 * 0.3)) and f"{h100:.1f} s" in out


def test_simclr_epoch_counts_the_flops_of_a_step():
    """A linear 'encoder' of known size: forward 2*B*in*out per matrix product, backward twice that."""
    bench = _load("simclr_epoch.py")
    args = bench.parse_args(["--model", "small_cnn", "--width", "4", "--batch-size", "8"])
    small = bench.step_flops(args)
    args.batch_size = 16
    assert 1.9 < bench.step_flops(args) / small < 2.1      # linear in the batch (the loss adds a little)
    head = torch.nn.Linear(64, 32)
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        head(torch.randn(10, 64, requires_grad=True)).sum().backward()
    assert counter.get_total_flops() == 3 * 2 * 10 * 64 * 32   # forward, grad of input, grad of weight


def test_augment_throughput_prints_both_pipelines_and_the_ratio(capsys):
    r = _load("augment_throughput.py").main(["--n-images", "64", "--batch-size", "16", "--workers", "0",
                                             "--device", "cpu"])
    out = capsys.readouterr().out
    assert "course_utils.augment" in out and "torchvision per-sample" in out
    assert math.isclose(r["ratio"], r["batched_images_per_s"] / r["torchvision_images_per_s"])
    assert f"ratio (a)/(b): {r['ratio']:.1f}x" in out


def test_method_fingerprint_prints_the_losses_it_computed(capsys):
    out = _load("method_fingerprint.py").main(["simclr"])
    printed = capsys.readouterr().out
    assert len(out["simclr"]) == 2 and ", ".join(f"{v:.6f}" for v in out["simclr"]) in printed
