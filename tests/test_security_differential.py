"""Issue 11: a verdict every other reader agrees with, bounded work, no crash.

The red-team corpus (`differential_corpus.py`: zip and tar ambiguity, views bigger than their
storage, work amplification, crashes above the reader, legitimate layouts) runs case by case in
throwaway processes (`case_runner.py`): our `read_file`, `convnextpose inspect --json`, and the
reference readers (torch.load(weights_only=True) or the container's own reader, zipfile, torch's
zip reader, tarfile, GNU tar). `differential_judge.py` lists what a case may not do: run code,
crash, hang, outgrow the memory budget of SECURITY.md, load when hostile, be refused when
legitimate, be read otherwise by a reference reader (tensor by tensor, bit for bit), or be refused
without one line naming the file. Every loaded case must agree with the reference readers whatever
its class. The same judge gives benchmarks/security_corpus.py its figures.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from case_runner import CaseRunner
from differential_corpus import CLASSES, DiffCase, cases
from differential_judge import judge

TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[DiffCase], Path]:
    tmp = tmp_path_factory.mktemp("differential")
    marker = tmp / "MARKER_payload_ran"
    return list(cases(tmp / "files", marker, big=False)), marker


@pytest.fixture(scope="module")
def runner() -> CaseRunner:
    run = CaseRunner(warmup=TESTS / "data" / "tiny_snapshot_83.pth.tar")
    yield run
    run.close()


def test_corpus_covers_every_class_of_the_issue(corpus: tuple[list[DiffCase], Path]) -> None:
    found = Counter((c.klass, c.expect) for c in corpus[0])
    for klass in CLASSES:
        assert sum(n for (k, _), n in found.items() if k == klass) >= 5, f"class {klass} has too few cases: {found}"
    names = {c.name for c in corpus[0]}
    for needed in (
        "second-archive-in-comment",
        "case-collision-data.pkl-first",
        "byteorder-upper-case-only",
        "nul-in-name-twin",
        "directory-with-size",
        "pax-size-disagrees-with-header",
        "global-pax-path",
        "gnu-sparse-pax",
        "v7-regular-with-slash",
        "stride0-2^122",
        "stride0-view-under-1000-keys",
        "load_from_bytes-shared-3000-calls",
        "codecs-encode-shared-3000-calls",
        "set-of-shared-list-3000-calls",
        "deflated-memo-puts",
        "int-keys-same-hash",
        "shared-dict-listed-100000-times",
        "float8_e4m3fn-weight@safetensors",
        "key-with-5000-digits-head-layer",
        "optimizer-param_groups-tensor",
        "refused-for-size-not-hashed",
        "torch-save-legacy-protocol-3",
        "gnu-tar-dot-gnu",
        "legacy-sys_info-big-endian",
        "storage-alignment-not-a-number",
        "lone-surrogate-name",
    ):
        assert needed in names, f"corpus lacks {needed}"


@pytest.mark.parametrize("klass", CLASSES)
def test_class_gets_one_verdict_every_reader_agrees_with(
    klass: str, corpus: tuple[list[DiffCase], Path], runner: CaseRunner
) -> None:
    all_cases, marker = corpus
    mistakes: list[str] = []
    for case in (c for c in all_cases if c.klass == klass):
        mistakes += [f"{case.name}: {kind}: {detail}" for kind, detail in judge(case, runner).mistakes]
    assert not marker.exists(), "a payload ran: the marker file was created"
    assert not mistakes, f"{len(mistakes)} mistakes in class {klass}:\n" + "\n".join(mistakes)
