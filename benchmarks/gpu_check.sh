#!/usr/bin/env bash
# GPU checks, one command, under 8 minutes on one GPU (issue 14, item 8):
#     bash benchmarks/gpu_check.sh            (PYTHON=... to choose the interpreter)
# Each section is delimited by `# >>> name` / `# <<< name` so sections can be added or moved
# independently (forward latency, the suite with --device cuda, the Human3.6M evaluation).
# Without CUDA every section skips, printing its reason, and the script exits 0.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-python}
STATUS=0

if ! "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    echo "gpu_check: skipped: no CUDA device (torch.cuda.is_available() is False with $("$PY" -c 'import torch; print("torch", torch.__version__)' 2>/dev/null || echo 'no torch'))"
    exit 0
fi
"$PY" -c "import torch; p = torch.cuda.get_device_properties(0); print(f'gpu_check: {torch.cuda.get_device_name(0)}, {p.total_memory / 2**30:.0f} GiB, torch {torch.__version__}, CUDA {torch.version.cuda}')"

# >>> h36m-evaluation (issue 14): the Human3.6M evaluation on CUDA with DataLoader workers
# A generated dataset in the authors' layout (1000x1000 JPEGs, 512 protocol-2 frames), a
# synthetic checkpoint with the published L architecture (random weights: the figures are
# not accuracy, the pipeline and its speed are what is checked):
#   1. `convnextpose evaluate` on CUDA, default workers (one per core): frames/s (stderr line);
#   2. the same 64 frames on CPU and on CUDA: the figures agree within 0.05 mm (the inputs are
#      the same bytes; only the convolution kernels differ);
#   3. benchmarks/h36m_throughput.py on CUDA: evaluation frames/s against the decode limit.
h36m_section() {
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/gpu-check-h36m.XXXXXX") || return 1
    trap 'rm -rf "$work"' RETURN
    REPO="$REPO" "$PY" - "$work" <<'EOF' || return 1
import sys, time
from pathlib import Path
import torch
import os
sys.path.insert(0, os.path.join(os.environ["REPO"], "tests"))
from h36m_helpers import write_dataset
from pytest_convnextpose.testing.synthetic import random_state_dict
from reference_model import VARIANTS
work = Path(sys.argv[1])
t = time.perf_counter()
write_dataset(work / "Human36M", image_format="jpg", frames=tuple(64 * k for k in range(128)), size=(1000, 1000),
              textured=True)
sd = random_state_dict(VARIANTS["L"].spec, seed=0)
torch.save({"epoch": 0, "network": {"module." + k: v for k, v in sd.items()}}, work / "synthetic_L.pth.tar")
print(f"h36m-evaluation: wrote 512 frames and a synthetic L checkpoint in {time.perf_counter() - t:.0f} s")
EOF
    local root="$work/Human36M" ckpt="$work/synthetic_L.pth.tar"
    echo "h36m-evaluation: 1. convnextpose evaluate, CUDA, default workers"
    "$PY" -m pytest_convnextpose evaluate "$ckpt" --h36m-root "$root" --device cuda --out "$work/cuda.json" \
        || [ $? -eq 1 ] || return 1  # exit 1 = above the published figure: expected for random weights
    echo "h36m-evaluation: 2. the same 64 frames on CPU and on CUDA"
    "$PY" -m pytest_convnextpose evaluate "$ckpt" --h36m-root "$root" --device cpu --max-frames 64 \
        --out "$work/cpu64.json" > /dev/null || return 1
    "$PY" -m pytest_convnextpose evaluate "$ckpt" --h36m-root "$root" --device cuda --max-frames 64 \
        --out "$work/cuda64.json" > /dev/null || return 1
    "$PY" - "$work/cpu64.json" "$work/cuda64.json" <<'EOF' || return 1
import json, sys
cpu, cuda = (json.load(open(p)) for p in sys.argv[1:3])
worst = max(abs(cpu["metrics"][m]["mean_mm"] - cuda["metrics"][m]["mean_mm"]) for m in cpu["metrics"])
print(f"h36m-evaluation: CPU vs CUDA on {cpu['num_samples']} frames: largest metric difference {worst:.4f} mm")
sys.exit(0 if worst <= 0.05 else 1)
EOF
    echo "h36m-evaluation: 3. throughput against the decode limit (negligible model, CUDA)"
    "$PY" "$REPO/benchmarks/h36m_throughput.py" --device cuda --data "$root" --repeats 2 || return 1
}
if h36m_section; then
    echo "h36m-evaluation: OK"
else
    echo "h36m-evaluation: FAILED"
    STATUS=1
fi
# <<< h36m-evaluation

exit "$STATUS"
