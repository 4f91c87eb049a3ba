"""The `convnextpose.*` metadata keys our files carry (safetensors from `convert`, ONNX from `export-onnx`).

One definition: the writers and the readers import these names, so renaming a key on one side
cannot silently break provenance on the other (a converted file answering to its source's
golden case, an ONNX graph to the checkpoint it was exported from).
"""
PREFIX = "convnextpose."

#: the ArchSpec as JSON (safetensors and ONNX): the loader prefers it to guesses, cross-checked with the shapes
SPEC = PREFIX + "spec"
VARIANT = PREFIX + "variant"
HEAD_UPSAMPLE_SOURCE = PREFIX + "head_upsample_source"
#: the sha256 of the file a safetensors file was converted from (its golden case applies to it)
SOURCE_SHA256 = PREFIX + "source_sha256"
SOURCE_CONTAINER = PREFIX + "source_container"
SOURCE_DIALECT = PREFIX + "source_dialect"
SOURCE_WRAPPER = PREFIX + "source_wrapper"
#: JSON {"format", "member", "sha256", "size"} of the archive (zip, tar, tar.gz, gzip download) the source was
#: read from: `source_sha256` is then the member's, the file as extracted; absent when the source was no member
SOURCE_ARCHIVE = PREFIX + "source_archive"
CONVERTER_VERSION = PREFIX + "converter_version"
VERIFICATION = PREFIX + "verification"
EPOCH = PREFIX + "epoch"
#: ONNX only: the checkpoint the graph was exported from, its fixed input size, what its output means
CHECKPOINT_SHA256 = PREFIX + "checkpoint_sha256"
INPUT_SIZE = PREFIX + "input_size"
OUTPUT = PREFIX + "output"
