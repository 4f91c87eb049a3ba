"""Hostile and malformed files are refused with the right error family, and nothing runs.

The corpus is generated once per session in a temporary folder (tests/hostile_corpus.py, the
`corpus` fixture in conftest). Each code-running payload
would only create a marker file; a positive control proves the payloads are live by running them
through plain `pickle.loads` in a subprocess and seeing the marker appear.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hostile_corpus import ExecutionMonitor, payloads, refusal_mistakes, run_pickle_loads_in_subprocess

from pytest_convnextpose.errors import CheckpointError
from pytest_convnextpose.reading import layer_of, read_file


def test_corpus_covers_every_container_and_attack(corpus: tuple[list, Path]) -> None:
    cases, _ = corpus
    names = {c.name for c in cases}
    containers = {n.split("@", 1)[1] for n in names}
    for needed in (
        "torch-zip",
        "torch-legacy",
        "tar-directory",
        "directory",
        "pickle",
        "safetensors",
        "pickle(_load_from_bytes)",
        "torchscript",
        "torch-tar",
    ):
        assert needed in containers, f"no hostile case in container {needed}; have {sorted(containers)}"
    for attack in (
        "os.system",
        "eval",
        "subprocess",
        "getattr-import",
        "nested-load_from_bytes",
        "setitem-on-tensor",
        "build-on-tensor",
        "duplicate-data.pkl-payload-first",
        "duplicate-data.pkl-payload-last",
        "deflate-bomb",
        "numel-beyond-record",
        "zip-entry-beyond-file",
        "dotdot-member",
        "absolute-member",
        "symlink-member",
        "hardlink-member",
        "duplicate-name",
        "billion-laughs",
        "reduce-script-class",
        "build-list-state",
        "non-torch-class-newobj",
        "standins-nested-too-deep",
        "standin-billion-laughs",
        "torch-class-outside-torchscript",
    ):
        assert any(n.startswith(attack + "@") for n in names), f"attack {attack} missing from the corpus"
    for attack in (
        "os.system",
        "eval",
        "sys_info-os.system",
        "sys_info-eval",
        "storages-os.system",
        "storages-eval",
        "tensors-os.system",
        "tensors-eval",
        "storage-beyond-member",
        "storage-view-beyond-storage",
        "view-beyond-storage",
        "duplicate-member",
        "dotdot-member",
        "absolute-member",
        "symlink-member",
        "hardlink-member",
        "module-persistent-id",
        "setitem-on-tensor",
        "record-count-huge",
    ):
        assert f"{attack}@torch-tar" in names, f"attack {attack} missing from the pre-1.0 torch tar corpus"


def test_every_hostile_file_is_refused_with_its_family_and_nothing_runs(corpus: tuple[list, Path]) -> None:
    cases, marker = corpus
    wrong = refusal_mistakes((case.name, case.path, case.family) for case in cases)
    assert not marker.exists(), "a payload ran: the marker file was created"
    assert not ExecutionMonitor.get().events, (
        f"code-execution audit events while reading: {ExecutionMonitor.get().events}"
    )
    assert not wrong, f"{len(wrong)} of {len(cases)} hostile files mishandled:\n" + "\n".join(wrong)


def test_refusals_name_their_layer(corpus: tuple[list, Path]) -> None:
    cases, _ = corpus
    layers = {}
    for case in cases:
        with pytest.raises(CheckpointError) as info:
            read_file(case.path)
        layers[case.name] = layer_of(info.value)
    assert layers["os.system@torch-zip"] == "pickle", layers["os.system@torch-zip"]
    assert layers["deflate-bomb@torch-zip"] == "container", layers["deflate-bomb@torch-zip"]
    assert layers["numel-beyond-record@torch-zip"] == "geometry", layers["numel-beyond-record@torch-zip"]
    assert layers["duplicate-name@safetensors"] == "safetensors", layers["duplicate-name@safetensors"]
    assert layers["billion-laughs@pickle"] == "graph", layers["billion-laughs@pickle"]
    assert layers["standins-nested-too-deep@torchscript"] == "graph", layers["standins-nested-too-deep@torchscript"]
    assert layers["build-list-state@torchscript"] == "pickle", layers["build-list-state@torchscript"]
    assert layers["sys_info-os.system@torch-tar"] == "pickle", layers["sys_info-os.system@torch-tar"]
    assert layers["storage-beyond-member@torch-tar"] == "geometry", layers["storage-beyond-member@torch-tar"]
    assert layers["symlink-member@torch-tar"] == "container", layers["symlink-member@torch-tar"]
    assert "other" not in layers.values(), [k for k, v in layers.items() if v == "other"]


@pytest.mark.slow
def test_payloads_are_live_under_plain_pickle(tmp_path: Path) -> None:
    """Positive control: the same payloads DO run under pickle.loads (in a throwaway subprocess)."""
    dead = []
    for name in payloads(tmp_path / "unused"):
        marker = tmp_path / f"marker-{name}"
        live = payloads(marker)[name]
        run_pickle_loads_in_subprocess(live, tmp_path)
        if not marker.exists():
            dead.append(name)
    assert not dead, f"payloads that did not run under pickle.loads (the test would prove nothing): {dead}"
