"""Hypothesis strategies that rebuild a legitimate file with the structures readers disagree on.

Byte-level mutation (strategies_mutation.py) rarely produces a well-formed ambiguity: a flipped bit
breaks a CRC or a checksum long before it makes a second end record or a pax header that renames a
member. These strategies start from the records of a legitimate file (our own freshly written one)
and rebuild it with the byte-level writers of `archive_builders.py`, drawing edits from the classes
of issue 11:
  zip     names changed in case, with NUL or backslash, twins, dropped or duplicated entries,
          extra fields (zip64, Info-ZIP unicode path, unknown), flag bits, data descriptors true or
          false, local names that disagree, DEFLATE, comments holding end records or whole archives,
          prepended or hidden bytes, zip64 end records in and out of place;
  tar     type flags, pax headers (path, size, sparse, link, charset, times), global pax headers,
          GNU long names, names ending in `/` or starting with `./`, case twins, duplicates, magics
          and prefix fields, folders claiming a size that hides a member;
  pickle  tensor geometry (stride 0, huge or empty sizes, offsets), one view shared under many keys,
          storage dtypes, odd metadata and optimizer entries, keys with long digit runs.
Every edit is applied to a legitimate file, so what loads must agree with the reference readers.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import Any

from archive_builders import (
    GNU_MAGIC,
    POSIX_MAGIC,
    StorageRef,
    ZipEntry,
    build_zip,
    descriptor,
    gnu_longname,
    pax_header,
    record_archive,
    stored_entries,
    tar_end,
    tar_file,
    tar_header,
    tensor_ref,
)
from hypothesis import strategies as st

LONG = os.environ.get("CONVNEXTPOSE_FUZZ_LONG") == "1"
EXAMPLES = int(os.environ.get("CONVNEXTPOSE_FUZZ_STRUCT_EXAMPLES", "600" if LONG else "40"))


@dataclass(frozen=True)
class Edit:
    kind: str
    index: int = 0
    arg: Any = None


def _edits(kinds: list[str], args: st.SearchStrategy) -> st.SearchStrategy[list[Edit]]:
    edit = st.builds(Edit, st.sampled_from(kinds), st.integers(0, 63), args)
    return st.lists(edit, min_size=1, max_size=3)


# -- zip ----------------------------------------------------------------------------------------------
ZIP_KINDS = [
    "upper",
    "case-twin",
    "nul",
    "backslash",
    "rootless",
    "drop",
    "duplicate",
    "deflate",
    "extra",
    "flag",
    "descriptor",
    "bad-descriptor",
    "local-name",
    "comment-eocd",
    "comment-archive",
    "prepend",
    "hidden",
    "zip64",
    "zip64-gap",
    "swap",
]


def zip_edits() -> st.SearchStrategy[list[Edit]]:
    arg = st.one_of(st.integers(0, 15), st.sampled_from([0x0001, 0x7075, 0x5455, 0xCAFE]), st.binary(max_size=24))
    return _edits(ZIP_KINDS, arg)


def build_zip_mutant(records: list[tuple[str, bytes]], edits: list[Edit]) -> bytes:
    entries = stored_entries(records)
    opts: dict[str, Any] = {}
    for e in edits:
        i = e.index % len(entries)
        ent = entries[i]
        if e.kind == "upper":
            entries[i] = ZipEntry(ent.name.upper(), ent.data)
        elif e.kind == "case-twin":
            entries.insert(i + 1, ZipEntry(ent.name.swapcase(), ent.data[::-1]))
        elif e.kind == "nul":
            entries.append(ZipEntry(ent.name + b"\x00x", ent.data))
        elif e.kind == "backslash":
            entries[i] = ZipEntry(ent.name.replace(b"/", b"\\"), ent.data)
        elif e.kind == "rootless":
            entries = [ZipEntry(x.name.split(b"/", 1)[-1], x.data) for x in entries]
        elif e.kind == "drop" and len(entries) > 1:
            entries.pop(i)
        elif e.kind == "duplicate":
            entries.append(ZipEntry(ent.name, ent.data))
        elif e.kind == "deflate" and ent.method == 0:  # (deflating twice would only corrupt the content)
            comp = zlib.compressobj(6, zlib.DEFLATED, -15)
            entries[i] = ZipEntry(
                ent.name,
                comp.compress(ent.data) + comp.flush(),
                method=8,
                usize=len(ent.data),
                crc=zlib.crc32(ent.data),
            )
        elif e.kind == "extra":
            tag = e.arg if isinstance(e.arg, int) and e.arg > 15 else 0x0001
            body = e.arg if isinstance(e.arg, bytes) else struct.pack("<Q", len(ent.data))
            ent.central_extra = struct.pack("<HH", tag, len(body)) + body
            if tag == 0x0001 and len(body) >= 8:
                ent.central_sizes = (len(ent.data), 0xFFFFFFFF)
        elif e.kind == "flag":
            ent.flags |= 1 << (e.arg if isinstance(e.arg, int) and e.arg < 16 else 5)
        elif e.kind in ("descriptor", "bad-descriptor"):
            ent.flags |= 8
            ent.descriptor = descriptor(ent.data) if e.kind == "descriptor" else descriptor(ent.data[:-1] or b"x")
        elif e.kind == "local-name":
            ent.local_name = ent.name.swapcase()
        elif e.kind == "comment-eocd":
            opts["comment"] = b"PK\x05\x06" + bytes(18) + (e.arg if isinstance(e.arg, bytes) else b"")
        elif e.kind == "comment-archive":
            opts["comment"] = build_zip(stored_entries(records[::-1]))
        elif e.kind == "prepend":
            opts["prefix"] = e.arg if isinstance(e.arg, bytes) and e.arg else b"MZ\x00\x00"
        elif e.kind == "hidden":
            opts["between"] = {i: b"PK\x03\x04" + bytes(26) + (e.arg if isinstance(e.arg, bytes) else b"")}
        elif e.kind == "zip64":
            opts["zip64"] = True
        elif e.kind == "zip64-gap":
            opts.update(zip64=True, zip64_gap=bytes(8))
        elif e.kind == "swap":
            j = (i + 1) % len(entries)
            entries[i], entries[j] = entries[j], entries[i]
    return build_zip(entries, **opts)


# -- tar ------------------------------------------------------------------------------------------------
TAR_KINDS = [
    "type",
    "pax-path",
    "pax-size",
    "pax-key",
    "global",
    "longname",
    "slash",
    "dot",
    "case-twin",
    "duplicate",
    "magic",
    "prefix-bytes",
    "dir-size",
    "drop",
]
TYPE_FLAGS = [b"0", b"\x00", b"7", b"5", b"1", b"2", b"3", b"6", b"K", b"S", b"D", b"V", b"Z", b"x", b"g"]
PAX_KEYS = [
    "mtime",
    "comment",
    "uname",
    "GNU.sparse.major",
    "GNU.sparse.name",
    "linkpath",
    "hdrcharset",
    "SCHILY.xattr.user.x",
    "charset",
    "path",
    "size",
]


def tar_edits() -> st.SearchStrategy[list[Edit]]:
    arg = st.one_of(st.sampled_from(TYPE_FLAGS), st.sampled_from(PAX_KEYS), st.integers(-3, 3), st.binary(max_size=16))
    return _edits(TAR_KINDS, arg)


def build_tar_mutant(records: list[tuple[str, bytes]], edits: list[Edit]) -> bytes:
    # each member: [pre-headers, name, data, typeflag, magic, tail, declared size]
    members: list[dict[str, Any]] = [
        {
            "pre": b"",
            "name": n.encode(),
            "data": d,
            "type": b"0",
            "magic": POSIX_MAGIC,
            "tail": b"",
            "size": None,
            "hidden": b"",
        }
        for n, d in records
    ]
    for e in edits:
        i = e.index % len(members)
        m = members[i]
        other = members[(i + 1) % len(members)]["name"]
        if e.kind == "type":
            m["type"] = e.arg if isinstance(e.arg, bytes) and len(e.arg) == 1 else b"5"
        elif e.kind == "pax-path":
            m["pre"] += pax_header(
                [("path", (other if e.arg == 1 else m["name"] + b"/" if e.arg == 2 else m["name"]).decode())]
            )
        elif e.kind == "pax-size":
            delta = e.arg if isinstance(e.arg, int) else 1
            m["pre"] += pax_header([("size", str(max(0, len(m["data"]) + delta)))])
        elif e.kind == "pax-key":
            key = e.arg if isinstance(e.arg, str) else "mtime"
            m["pre"] += pax_header(
                [(key, "1" if key not in ("path", "GNU.sparse.name", "linkpath") else other.decode())]
            )
        elif e.kind == "global":
            key = e.arg if isinstance(e.arg, str) else "comment"
            m["pre"] += pax_header([(key, other.decode() if key == "path" else "7")], b"g")
        elif e.kind == "longname":
            name = other if e.arg == 1 else m["name"]
            m["pre"] += gnu_longname(name)
            m["magic"] = GNU_MAGIC
        elif e.kind == "slash":
            m["name"] += b"/"
        elif e.kind == "dot":
            m["name"] = b"./" + m["name"]
        elif e.kind == "case-twin":
            members.insert(i + 1, dict(m, name=m["name"].swapcase(), pre=b""))
        elif e.kind == "duplicate":
            members.append(dict(m, pre=b""))
        elif e.kind == "magic":
            m["magic"] = [POSIX_MAGIC, GNU_MAGIC, None, b"ustar\x00  "][(e.arg if isinstance(e.arg, int) else 0) % 4]
        elif e.kind == "prefix-bytes":
            m["tail"] = e.arg if isinstance(e.arg, bytes) and e.arg.strip(b"\x00") else b"snap"
        elif e.kind == "dir-size":
            hidden = tar_file(other, m["data"])
            members.insert(
                i,
                {
                    "pre": b"",
                    "name": m["name"].rsplit(b"/", 1)[0] + b"/x/",
                    "data": b"",
                    "type": b"5",
                    "magic": POSIX_MAGIC,
                    "tail": b"",
                    "size": len(hidden),
                    "hidden": hidden,
                },
            )
        elif e.kind == "drop" and len(members) > 1:
            members.pop(i)
    out = bytearray()
    for m in members:
        size = len(m["data"]) if m["size"] is None else m["size"]
        out += m["pre"] + tar_header(m["name"], size, m["type"], magic=m["magic"], tail=m["tail"])
        body = m["hidden"] or m["data"]
        out += body + bytes(-len(body) % 512)
    return bytes(out + tar_end())


# -- pickle ---------------------------------------------------------------------------------------------
PICKLE_KINDS = ["geometry", "share", "stype", "metadata", "optimizer", "digits", "empty"]
SIZES = [0, 1, 2, 3, 16, 2**20, 2**28, 2**31, 2**61, 2**62 - 1]
ITEM_SIZES = {
    "FloatStorage": 4,
    "HalfStorage": 2,
    "BoolStorage": 1,
    "ByteStorage": 1,
    "CharStorage": 1,
    "ComplexFloatStorage": 8,
    "LongStorage": 8,
    "BFloat16Storage": 2,
    "DoubleStorage": 8,
}
STYPES = list(ITEM_SIZES)


def pickle_edits() -> st.SearchStrategy[list[Edit]]:
    geometry = st.tuples(
        st.lists(st.sampled_from(SIZES), min_size=1, max_size=3),
        st.lists(st.sampled_from([0, 1, 2, 2**20, 2**40]), min_size=1, max_size=3),
        st.sampled_from([0, 1, 2**20]),
    )
    arg = st.one_of(
        geometry,
        st.sampled_from([2, 50, 1000, 10_000]),
        st.sampled_from(STYPES),
        st.sampled_from(["huge-int", "deep", "tensor", "param_groups-tensor", "state-int", "bytes"]),
    )
    return _edits(PICKLE_KINDS, arg)


def build_pickle_mutant(state: dict, storage_bytes: dict[str, bytes], edits: list[Edit]) -> bytes:
    """A torch zip of `{"network": state, ...}` (placeholders) after the edits."""
    network = dict(state)
    data = dict(storage_bytes)
    extra: dict[str, Any] = {"epoch": 83}
    keys = list(network)
    for e in edits:
        key = keys[e.index % len(keys)]
        ref = network[key]
        storage = ref.args[0]
        if e.kind == "geometry" and isinstance(e.arg, tuple):
            sizes, strides, offset = e.arg
            strides = (strides * len(sizes))[: len(sizes)]
            network[key] = tensor_ref(storage, tuple(sizes), tuple(strides), offset)
        elif e.kind == "share":
            count = e.arg if isinstance(e.arg, int) else 50
            network.update({f"{key}.copy{j}": ref for j in range(count)})
        elif e.kind == "stype" and isinstance(e.arg, str) and e.arg in ITEM_SIZES:
            raw = data[storage.key]
            size = ITEM_SIZES[e.arg]
            if len(raw) % size == 0:
                if e.arg == "BoolStorage":
                    data[storage.key] = bytes(b & 1 for b in raw)
                new = StorageRef(storage.key, len(raw) // size, e.arg)
                for k, v in list(network.items()):
                    if v.args[0] is storage:
                        n = new.numel
                        network[k] = tensor_ref(new, (n,), (1,))
        elif e.kind in ("metadata", "optimizer"):
            extra.update(_odd_metadata(e.kind, e.arg))
        elif e.kind == "digits":
            network[key.rsplit(".", 2)[0] + "." + "7" * 5000 + ".weight"] = ref
        elif e.kind == "empty":
            network[key] = tensor_ref(storage, (0, 2**40, 3), (1, 1, 1))
    return build_zip(stored_entries(record_archive({"network": network, **extra}, data, root="snap")))


def _odd_metadata(kind: str, what: Any) -> dict[str, Any]:
    what = what if isinstance(what, str) else ""
    if kind == "metadata":
        if what == "huge-int":
            return {"best": 2**2000}
        if what == "deep":
            deep: Any = 1
            for _ in range(120):
                deep = [deep]
            return {"history": deep}
        return {"note": "x" * 1000}
    return {
        "optimizer": {
            "tensor": StorageRefValue,
            "param_groups-tensor": {"param_groups": StorageRefValue},
            "state-int": {"state": 5, "param_groups": 7},
            "bytes": b"\x00" * 10,
        }.get(what, 3)
    }


#: a small tensor placeholder used as an odd metadata value (its storage is always present: key "meta")
StorageRefValue = tensor_ref(StorageRef("meta", 3), (3,))
META_BYTES = {"meta": bytes(12)}
