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
#   forward  - latency: ours vs the authors' code vs onnxruntime's CUDA provider (benchmarks/forward.py)
# Further sections (e.g. Human3.6M evaluation) go below, in the same shape.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
SECTIONS=${SECTIONS:-"parity forward"}
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

exit "$status"
