#!/usr/bin/env bash
# GPU checks, one section each. Every section skips cleanly (a line saying why, exit status
# untouched) when its device or dependency is missing, so the script runs anywhere; a
# section that runs and fails makes the script exit 1.
#
#   bash benchmarks/gpu_check.sh                  # all sections
#   AUTHORS_REPO=/path/to/ConvNeXtPose bash benchmarks/gpu_check.sh   # time the authors' own code too
#   SECTIONS="parity forward" bash benchmarks/gpu_check.sh            # a subset
#
# Sections:
#   parity   - golden cases through build_model on CUDA (TF32 off, then on): max/mean vs golden
#   suite    - the conformance suite with --device cuda: the golden files, then the four synthetic
#              variants (their latency tests at batch 1 and 32 run on CUDA)
#   precision - latency of XS/S/M/L at batch 1 and 32 in fp32, TF32 and AMP, reported apart,
#              each with its largest difference from fp32 (benchmarks/precision_latency.py)
#   forward  - latency: ours vs the authors' code vs onnxruntime's CUDA provider (benchmarks/forward.py)
#   h36m     - Human3.6M evaluation on CUDA with DataLoader workers: frames/s, CPU vs CUDA agreement,
#              throughput against the decode limit (benchmarks/h36m_throughput.py)
# Further sections go below, in the same shape.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PY=${PYTHON:-python}
SECTIONS=${SECTIONS:-"parity suite precision forward h36m"}
status=0

section() { printf '\n== %s ==\n' "$1"; }
wanted() { case " $SECTIONS " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
have_cuda() { "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; }

if have_cuda; then
    "$PY" -c "import torch; print('CUDA:', torch.cuda.get_device_name(0), '| torch', torch.__version__)"
    CUDA=1
else
    echo "no CUDA device (torch.cuda.is_available() is False): GPU sections are skipped"
    CUDA=0
fi

# -- parity: the golden cases on the GPU -------------------------------------------------------
if wanted parity; then
    section "golden parity on CUDA"
    if [ "$CUDA" = 0 ]; then
        echo "skipped: no CUDA device"
    elif [ ! -f ../shared/golden/manifest.json ] && [ -z "${CONVNEXTPOSE_GOLDEN:-}" ]; then
        echo "skipped: no golden folder (../shared/golden or \$CONVNEXTPOSE_GOLDEN)"
    else
        "$PY" - <<'EOF' || status=1
import json, os, sys
from pathlib import Path
import torch
from pytest_convnextpose import load_checkpoint
from reference_model import build_model

golden = Path(os.environ.get("CONVNEXTPOSE_GOLDEN") or "../shared/golden")
cases = json.loads((golden / "manifest.json").read_text())
bad = []
for tf32 in (False, True):
    torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cuda.matmul.allow_tf32 = tf32
    for name, m in cases.items():
        ckpt = load_checkpoint(golden / m["checkpoint"])
        model = build_model(ckpt.spec)
        model.load_state_dict(ckpt.state_dict, strict=True)
        model = model.eval().cuda()
        want = torch.load(golden / m["expected"], map_location="cpu", weights_only=True)
        with torch.inference_mode():
            got = model(want["input"].cuda()).cpu()
        d = (got.double() - want["coords"].double()).abs()
        max_tol, mean_tol = (1e-4, None) if name == "tiny" else (1e-3, 5e-5)  # tests/test_golden_parity.py
        ok = d.max() <= max_tol and (mean_tol is None or d.mean() <= mean_tol)
        print(f"{name:5} tf32={'on ' if tf32 else 'off'} max {d.max():.3g} mean {d.mean():.3g} "
              f"(bounds {max_tol:g}{'' if mean_tol is None else f', mean {mean_tol:g}'}) {'ok' if ok else 'OUT OF BOUNDS'}")
        if not ok and not tf32:  # TF32 rounds to 10 mantissa bits: reported, not held to the float32 bounds
            bad.append(name)
sys.exit(1 if bad else 0)
EOF
    fi
fi

# -- suite: the conformance suite on CUDA ---------------------------------------------------------
if wanted suite; then
    section "conformance suite with --device cuda"
    if [ "$CUDA" = 0 ]; then
        echo "skipped: no CUDA device"
    else
        GOLDEN=${CONVNEXTPOSE_GOLDEN:-../shared/golden}
        if [ -f "$GOLDEN/manifest.json" ]; then
            "$PY" -m pytest --ckpt="$GOLDEN/tiny_snapshot_83.pth.tar" --ckpt="$GOLDEN/xs_snapshot_83.pth.tar" \
                --ckpt="$GOLDEN/ConvNeXtPose_L.tar" --device cuda -q -p no:cacheprovider || status=1
        else
            echo "golden files: skipped (no $GOLDEN/manifest.json)"
        fi
        "$PY" -m pytest --pyargs conformance --device cuda -q -p no:cacheprovider --benchmark-columns=min,median,mean \
            || status=1
    fi
fi

# -- precision: fp32, TF32 and AMP apart ---------------------------------------------------------
if wanted precision; then
    section "latency in fp32, TF32 and AMP (reported apart)"
    if [ "$CUDA" = 0 ]; then
        echo "skipped: no CUDA device"
    else
        "$PY" benchmarks/precision_latency.py --device cuda --variants XS,S,M,L --batches 1,32 || status=1
    fi
fi

# -- forward: latency against the authors' code and onnxruntime's CUDA provider ------------------
if wanted forward; then
    section "forward latency on CUDA: ours vs the authors' code vs onnxruntime (CUDA provider)"
    if [ "$CUDA" = 0 ]; then
        echo "skipped: no CUDA device"
    else
        "$PY" -c "import onnxruntime as o; p = o.get_available_providers(); print('onnxruntime', o.__version__, p); \
'CUDAExecutionProvider' in p or print('note: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu);', \
'its rows are skipped')"
        "$PY" benchmarks/forward.py --device cuda --variants "${VARIANTS:-XS,S,M,L}" --batches "${BATCHES:-1,8,32}" \
            --repeats "${REPEATS:-30}" ${AUTHORS_REPO:+--authors-repo "$AUTHORS_REPO"} || status=1
    fi
fi

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
if wanted h36m; then
    section "Human3.6M evaluation on CUDA (generated data, synthetic L weights)"
    if [ "$CUDA" = 0 ]; then
        echo "skipped: no CUDA device"
    elif h36m_section; then
        echo "h36m-evaluation: OK"
    else
        echo "h36m-evaluation: FAILED"
        status=1
    fi
fi

exit "$status"
