#!/bin/bash
# The course's measurements on a GPU, in one go (under 9 minutes on an H100-class GPU: each step has its own time limit):
# seconds per SimCLR epoch (ResNet-18, batch 512, CIFAR-10-sized images) in mixed precision,
# in float32 and compiled; the accuracy SimCLR reaches in a 2-minute budget on the cpu
# profile's data (ResNet-18, batch 512); and every notebook's gpu settings, cut to a smoke
# run, on CUDA. Each result also goes to a file in OUT (default ./gpu_check).
#
#     bash benchmarks/gpu_check.sh [OUT]
export PYTHONUNBUFFERED=1 MPLBACKEND=Agg TQDM_MININTERVAL=10
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD
OUT=${1:-${OUT:-gpu_check}}
mkdir -p "$OUT"
start=$(date +%s)
step() { echo "[$(( $(date +%s) - start )) s] $*" | tee -a "$OUT/steps.txt"; }
{ nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv
  python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name(), torch.cuda.get_device_capability())"
} 2>&1 | tee "$OUT/device.txt"
step "SimCLR epoch, mixed precision"
timeout 60 python3 benchmarks/simclr_epoch.py --data synthetic --steps 30 --warmup 5 2>&1 | tee "$OUT/epoch_amp.txt"
step "SimCLR epoch, float32"
timeout 35 python3 benchmarks/simclr_epoch.py --data synthetic --steps 10 --warmup 3 --no-amp 2>&1 | tee "$OUT/epoch_fp32.txt"
step "SimCLR epoch, compiled"
timeout 110 python3 benchmarks/simclr_epoch.py --data synthetic --steps 30 --warmup 5 --compile 2>&1 | tee "$OUT/epoch_compile.txt"
step "SimCLR in a 2-minute budget (ResNet-18, batch 512, shapes)"
timeout 180 python3 benchmarks/simclr_budget.py --model resnet18 --batch-size 512 --proj-hidden 2048 --minutes 2 \
  2>&1 | tee "$OUT/budget.txt"
step "notebooks, gpu settings cut to a smoke run, on CUDA"
python3 -m course_utils.smoke /tmp/course_smoke_data > /dev/null
COURSE_PROFILE=gpu COURSE_SMOKE=1 COURSE_DATA=/tmp/course_smoke_data COURSE_RUNS=/tmp/course_smoke_runs \
  timeout 150 python3 scripts/run_notebooks.py 03 04 05 06 07 00 01 02 08 2>&1 | tail -n 80 | tee "$OUT/notebooks.txt"
step "done"
