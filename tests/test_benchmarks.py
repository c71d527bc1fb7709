"""The benchmark scripts run end to end on tiny settings and print their figures.
(Their speed is measured by running them, never asserted in a test.)"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(script, *args):
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_simclr_cpu_prints_the_run_and_the_baselines():
    out = _run("simclr_cpu.py", "--n-train", "128", "--n-test", "64", "--width", "4", "--epochs", "1",
               "--batch-size", "32", "--device", "cpu", "--threads", "1")
    assert "trained in" in out and "images/s" in out
    for row in ("raw pixels", "random SmallCNN", "SimCLR"):
        assert row in out


def test_simclr_epoch_prints_throughput():
    out = _run("simclr_epoch.py", "--model", "small_cnn", "--width", "4", "--batch-size", "16", "--steps", "2",
               "--warmup", "1", "--data", "shapes", "--device", "cpu")
    assert "images/s" in out


def test_augment_throughput_prints_both_pipelines_and_the_ratio():
    out = _run("augment_throughput.py", "--n-images", "64", "--batch-size", "16", "--workers", "0",
               "--device", "cpu")
    assert "course_utils.augment" in out and "torchvision per-sample" in out and "ratio (a)/(b)" in out
