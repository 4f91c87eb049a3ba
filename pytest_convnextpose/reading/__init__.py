"""Layer 1, bytes -> Python objects, executing nothing from the file (SECURITY.md).

Public face: `read_file(path, map_location="cpu") -> RawFile` and `read_bytes`; `layer_of(err)`
names the layer that refused a file. The modules below are one concern each: `sniff`
identifies the container from its bytes; `zip_format`, `tar_format`, `directory_format`,
`torch_tar_format`, `safetensors_format`, `torchscript_format`, `legacy_format` and `pickles`
validate a container before anything is unpickled; `unpickler` is the one allowlist opcode
machine; `tensors` and `storage_ids` check storage geometry; `graph` bounds the object graph;
`limits` and `budget` hold every budget (one `Budget` charged by every stage of a read). `reader` ties them together.
"""
from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "read_file": "reader", "read_bytes": "reader", "RawFile": "reader", "archive_members": "reader",
    "layer_of": "errors", "Limits": "limits", "DEFAULT_LIMITS": "limits",
})
