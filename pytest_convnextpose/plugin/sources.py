"""Which checkpoints a pytest run is about: `--ckpt`, `CONVNEXTPOSE_CKPT`, ini, or the embedded default.

A `CheckpointSource` is what the suite is parametrized over. It is cheap (a path and the
hash of its bytes) so collection never has to load a checkpoint: a file that cannot even
be read still gets a test id, and its load test fails with the reader's one-line error.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..reading.digest import file_sha256

ENV_VAR = "CONVNEXTPOSE_CKPT"


@dataclass(frozen=True)
class CheckpointSource:
    """One checkpoint to test. `synthetic` marks the embedded default (never real weights)."""

    path: Path
    sha256: Optional[str]  # None when the path cannot be read as a file
    synthetic: bool = False
    origin: str = "option"  # option | env | ini | default

    @property
    def id(self) -> str:
        """pytest id: `<file name>-<first 8 hex of sha256>` (`synthetic-` in front for the default).

        For a readable file this equals `Checkpoint.short_id`."""
        digest = self.sha256[:8] if self.sha256 else "unreadable"
        name = f"{self.path.name}-{digest}"
        return f"synthetic-{name}" if self.synthetic else name

    def to_dict(self) -> dict:
        return {"id": self.id, "path": str(self.path), "sha256": self.sha256,
                "synthetic": self.synthetic, "origin": self.origin}


def make_source(path: str | os.PathLike, *, origin: str, synthetic: bool = False) -> CheckpointSource:
    p = Path(path).expanduser()
    p = p if p.is_absolute() else Path.cwd() / p
    return CheckpointSource(p, file_sha256(p), synthetic, origin)


def explicit_paths(option_values: list[str], env: Optional[str], ini_values: list[Path]) -> tuple[list[str], str]:
    """The user's checkpoints and where they came from: command line, else env, else ini."""
    if option_values:
        return list(option_values), "option"
    if env:
        return [p for p in env.split(os.pathsep) if p.strip()], "env"
    if ini_values:
        return [str(p) for p in ini_values], "ini"
    return [], "none"


def dedupe(sources: list[CheckpointSource]) -> list[CheckpointSource]:
    """Same file given twice -> tested once (pytest ids must be unique)."""
    seen: set[Path] = set()
    out = []
    for s in sources:
        key = s.path.resolve() if s.path.exists() else s.path
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out
