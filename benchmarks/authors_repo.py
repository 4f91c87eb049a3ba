"""Run the authors' own ConvNeXtPose code (a checkout of medialab-ku/ConvNeXtPose) for benchmarking.

Nothing of theirs is copied here: `load(repo)` imports `main/model.py` and
`common/nets/convnext_bn.py` from the user's checkout. What their code needs and this
machine lacks is supplied from a temporary folder, outside the repository and the
checkout, and only for inference:

- `timm.models.layers.{trunc_normal_, DropPath}` and `timm.models.registry.register_model`:
  torch's `trunc_normal_`, a DropPath that is the identity (their `get_pose_net` builds
  none at inference: drop_path_rate is 0), and a decorator that does nothing;
- `config.cfg`: their global configuration object, filled with the variant's numbers
  (their `main/config.py` holds one variant and edits `sys.path`);
- on CPU, their `soft_argmax` calls `.cuda()` on three index vectors; while their
  forward runs, `Tensor.cuda` returns the tensor on the input's device instead.

Their `HeadNet` hard-codes (up, up, no), which is right for XS/S only (docs/spec.md §2); for the
3-UP variants M and L the third layer's `upsample1` is set to the bilinear x2 upsampling
their `DeConv` builds for up=True. `describe()` says all of this in the benchmark output.
"""
from __future__ import annotations

import atexit
import contextlib
import importlib
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Callable, Iterator, Mapping

import torch
from torch import nn

_STUBS = {
    "timm/__init__.py": "",
    "timm/models/__init__.py": "",
    "timm/models/layers.py": (
        '"""Inference-only stand-ins for the timm names the authors\' model imports."""\n'
        "from torch import nn\n"
        "trunc_normal_ = nn.init.trunc_normal_\n\n\n"
        "class DropPath(nn.Module):\n"
        "    def __init__(self, drop_prob=0.0):\n"
        "        super().__init__()\n"
        "        self.drop_prob = drop_prob\n\n"
        "    def forward(self, x):\n"
        "        if self.training and self.drop_prob > 0:\n"
        "            raise NotImplementedError('benchmark stub: DropPath is for inference only')\n"
        "        return x\n"
    ),
    "timm/models/registry.py": "def register_model(fn):\n    return fn\n",
    "config.py": "import types\ncfg = types.SimpleNamespace()  # filled per variant by benchmarks/authors_repo.py\n",
}


@dataclass
class AuthorsCode:
    repo: Path
    commit: str
    stub_dir: Path
    model_module: ModuleType
    cfg: object

    def describe(self) -> str:
        return (f"the authors' code from {self.repo} (commit {self.commit}): main/model.py + "
                f"common/nets/convnext_bn.py, with inference stubs for timm and config in {self.stub_dir}, "
                "Tensor.cuda -> input device on CPU, and deconv_layers_3 upsampling for 3-UP variants")

    def build(self, spec, state_dict: Mapping[str, torch.Tensor], input_size: tuple[int, int] = (256, 256)
              ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Their network for `spec` with `state_dict` loaded strictly, eval mode, as images -> coords."""
        if (len(spec.head_channels) != 3 or len(set(spec.head_channels)) != 1 or set(spec.head_kernels) != {3}
                or spec.head_upsample not in ((True, True, False), (True, True, True))):
            raise ValueError(f"the authors' HeadNet has 3 equal layers of kernel 3, (up, up, no|up): {spec.summary()}")
        self._configure(spec, input_size)
        net = self.model_module.get_pose_net(self.cfg, False, spec.joint_num)
        if spec.head_upsample[2]:
            net.head.deconv_layers_3.upsample1 = nn.UpsamplingBilinear2d(scale_factor=2)
        net.load_state_dict(dict(state_dict), strict=True)
        net.eval()

        def run(images: torch.Tensor) -> torch.Tensor:
            self._configure(spec, tuple(images.shape[2:]))  # their soft_argmax reads the global cfg
            with _cuda_means(images.device):
                return net(images)

        run.module = net  # type: ignore[attr-defined]  (for .to(device) by the caller)
        return run

    def _configure(self, spec, input_size: tuple[int, int]) -> None:
        cfg = self.cfg
        cfg.input_shape = tuple(input_size)
        cfg.output_shape = spec.heatmap_size(tuple(input_size))
        cfg.depth_dim = spec.depth_dim
        cfg.depth = spec.head_channels[0]
        cfg.backbone_cfg = (list(spec.depths), list(spec.dims))


@contextlib.contextmanager
def _cuda_means(device: torch.device) -> Iterator[None]:
    """On CPU, `t.cuda()` inside the block returns `t.to(device)` (their soft-argmax's index vectors)."""
    if device.type == "cuda":
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *args, **kwargs: self.to(device)  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def _commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "-C", str(repo), "rev-parse", "--show-toplevel", "HEAD"], capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = out.stdout.split()
    if len(lines) != 2 or Path(lines[0]).resolve() != repo:
        return "unknown (not a git checkout)"
    return lines[1]


def load(repo: str | Path) -> AuthorsCode:
    """Import the authors' model code from checkout `repo`, with stubs in a fresh temporary folder."""
    repo = Path(repo).resolve()
    for rel in ("main/model.py", "common/nets/convnext_bn.py"):
        if not (repo / rel).is_file():
            raise FileNotFoundError(f"--authors-repo {repo}: no {rel} (expected a medialab-ku/ConvNeXtPose checkout)")
    clash = [m for m in ("config", "model", "nets", "timm") if m in sys.modules]
    if clash:
        raise RuntimeError(f"cannot import the authors' code: modules {clash} are already imported in this process")
    stub_dir = Path(tempfile.mkdtemp(prefix="convnextpose-authors-stubs-"))
    atexit.register(shutil.rmtree, stub_dir, ignore_errors=True)
    for rel, text in _STUBS.items():
        (stub_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (stub_dir / rel).write_text(text)
    sys.path[:0] = [str(stub_dir), str(repo / "main"), str(repo / "common")]
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # leave the user's checkout as it was
    try:
        config = importlib.import_module("config")
        model_module = importlib.import_module("model")
    finally:
        sys.dont_write_bytecode = dont_write
    if Path(config.__file__).resolve().parent != stub_dir.resolve():
        raise RuntimeError(f"imported config from {config.__file__}, not the stub in {stub_dir}")
    return AuthorsCode(repo, _commit(repo), stub_dir, model_module, config.cfg)
