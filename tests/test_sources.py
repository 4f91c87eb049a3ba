"""The plugin identifies checkpoints by the same sha256 as the reader (test ids == short_id)."""
from __future__ import annotations

import hashlib

import pytest
from ckpt_helpers import SMALL_SPEC as SMALL

from pytest_convnextpose.plugin.sources import make_source
from pytest_convnextpose.reading import read_file
from pytest_convnextpose.reading.digest import file_sha256
from pytest_convnextpose.testing.synthetic import random_state_dict
from pytest_convnextpose.testing.writers import write_container


@pytest.mark.parametrize("container", ["torch-zip", "directory", "tar-directory"])
def test_source_sha256_equals_the_readers(tmp_path, container):
    path = tmp_path / ("ckpt" if container == "directory" else "ckpt.pth")
    write_container({"network": random_state_dict(SMALL)}, path, container)
    got, want = file_sha256(path), read_file(path).sha256
    assert got == want, f"{container}: plugin sha256 {got} != reader sha256 {want}"


def test_file_sha256_is_the_plain_digest_of_the_bytes(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"convnextpose" * 1000)
    assert file_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_unreadable_path_has_no_digest_and_the_source_id_still_names_it(tmp_path):
    missing = tmp_path / "missing.tar"
    assert file_sha256(missing) is None
    assert "missing.tar" in make_source(missing, origin="cli").id
