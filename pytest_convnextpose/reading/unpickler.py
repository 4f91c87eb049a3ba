"""An allowlist pickle machine: executes pickle opcodes itself, never Python's `pickle.load`.

Why not `pickle.Unpickler` with a `find_class` filter: such a filter still lets `SETITEM`,
`APPEND` and `BUILD` act on *any* object on the stack (a tensor, a storage), so a file can mutate
or poison objects without naming a forbidden global. Here every opcode checks the types it acts
on, and every global resolves to a *marker* whose only use is a checked call (`REDUCE`) with
validated arguments. Nothing from the file is ever looked up by name in a Python module.

Supported: protocols 0-5 as torch and `pickle.dumps` of tensors produce them. Refused:
`INST`/`OBJ`/`NEWOBJ`/`NEWOBJ_EX`, extension registry, out-of-band buffers, text `STRING`.

Torch mode (`torch_mode=True`, every pickle torch.load reads: a record archive's `data.pkl`, the
legacy stream): the file must also be readable by torch.load(weights_only=True), or a file we call
sound would fail to load for the next user. Opcodes and globals outside that reader's set (FRAME,
text opcodes, MEMOIZE, POP, `frozenset`, dtype aliases, ...) are run as usual and then refused
(`UnsupportedPickleError`, deferred in the budget so that a structural refusal found later wins).

Work and memory: every operation and every created object is charged to the read's `Budget`. Dict
keys and set items are strings, bytes, numbers, booleans or None; ints within +-(2**61 - 2) (beyond
that, Python hashes them alike: a dict of them costs quadratic time); tuples are refused as keys.

TorchScript mode (`torchscript=True`, only for the `data.pkl` of a `torch.jit.save` archive):
a `__torch__.*` global becomes an inert `ScriptClass`; `NEWOBJ` of one with empty arguments makes
a `ScriptObject` stand-in; `BUILD` on a fresh stand-in stores a plain dict of attributes and
nothing else; the identity list helpers of `torch.jit._pickle` are checked calls. Every other
check is the same as in the normal mode.
"""

from __future__ import annotations

import _compat_pickle
import struct
from collections import OrderedDict
from typing import Any, Callable, Optional

import torch

from .budget import ITEM_BYTES, OBJECT_BYTES, OP_BYTES, TENSOR_BYTES, Budget
from .errors import ForbiddenPickleError, PickleCorruptError, PickleLimitError, UnsupportedPickleError
from .standins import QualifiedName, ScriptClass, ScriptObject, is_script_class_name
from .tensors import DTYPE_NAMES, STORAGE_DTYPES, Storage, check_view, view_of


class Global(QualifiedName):
    """A global named by the file and found in the allowlist; inert until a checked REDUCE."""


ALLOWED_CALLABLES = {
    ("collections", "OrderedDict"), ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_tensor"), ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"), ("torch.storage", "_load_from_bytes"),
    ("_codecs", "encode"), ("builtins", "set"), ("builtins", "frozenset"), ("torch", "Size"),
    ("torch", "device"),
}

#: identity helpers `torch.jit.save` wraps typed lists in; allowed in TorchScript mode only
TORCHSCRIPT_CALLABLES = {
    ("torch.jit._pickle", "build_intlist"), ("torch.jit._pickle", "build_doublelist"),
    ("torch.jit._pickle", "build_boollist"), ("torch.jit._pickle", "build_tensorlist"),
    ("torch.jit._pickle", "restore_type_tag"),
}

#: top-level modules whose CamelCase names are tools of attack, not a model's classes
_SYSTEM_MODULES = {"os", "posix", "nt", "subprocess", "builtins", "__builtin__", "sys", "shutil", "socket",
                   "runpy", "importlib", "pickle", "_pickle", "codecs", "ctypes", "pty", "platform",
                   "multiprocessing", "webbrowser", "types", "operator", "functools", "code", "bdb", "pdb",
                   "asyncio", "threading", "_thread", "signal", "urllib", "http", "ftplib", "smtplib"}

BYTES_COPY_LIMIT = 1 << 20
SAFE_KEY_TYPES = (str, int, float, bool, type(None), bytes)
#: beyond this magnitude distinct ints hash alike (Python hashes ints modulo 2**61 - 1)
MAX_KEY_INT = 2**61 - 2

#: the opcodes torch.load(weights_only=True) runs (torch/_weights_only_unpickler.py)
TORCH_OPCODES = frozenset(b"c\x81RbaesuU(t\x85\x86\x87N\x89\x88)]}\x8fJKMGXQhjqr\x8a\x80.")
#: allowlisted globals torch's weights-only unpickler does not know
NOT_IN_TORCH = {("torch.storage", "_load_from_bytes"), ("builtins", "frozenset"), ("torch", "UntypedStorage")}
DTYPE_ALIASES = {"float", "double", "half", "long", "int", "short"}


def is_allowed_global(module: str, name: str) -> bool:
    if (module, name) in ALLOWED_CALLABLES:
        return True
    return module == "torch" and (name in STORAGE_DTYPES or name in DTYPE_NAMES)


def _memo_op(action: Callable[[Any, int], None], index: Callable[[Any], int]) -> Callable[[Any], None]:
    """A memo opcode: read the index in its encoding, then get or put."""

    def op(self: Any) -> None:
        action(self, index(self))

    return op


class Unpickler:
    """Run one pickle found at `data[start:]`; `load()` returns its object.

    persistent_load: maps a BINPERSID id (a validated tuple) to a `Storage`.
    load_from_bytes: handles `torch.storage._load_from_bytes(b)`; None where it is not allowed.
    markers: extra globals that become inert `Global` markers (never callable: `REDUCE` only calls
             `ALLOWED_CALLABLES`); the pre-1.0 tar format names tensor and CUDA storage types.
    scalar_ids: persistent ids may also be a str or int (the pre-1.0 tar's `pickle` member);
                `persistent_load` then validates them.
    torch_mode: refuse (deferred) what torch.load(weights_only=True) would not read.
    """

    def __init__(
        self,
        data: memoryview,
        *,
        start: int = 0,
        base_offset: int = 0,
        budget: Budget,
        persistent_load: Optional[Callable[[tuple, int], Storage]] = None,
        load_from_bytes: Optional[Callable[[memoryview, int], Storage]] = None,
        what: str = "pickle",
        torchscript: bool = False,
        markers: frozenset[tuple[str, str]] = frozenset(),
        scalar_ids: bool = False,
        torch_mode: bool = False,
    ) -> None:
        self.data = data
        self.pos = start
        self.op_pos = start
        self.base = base_offset
        self.budget = budget
        self.persistent_load = persistent_load
        self.load_from_bytes = load_from_bytes
        self.what = what
        self.torchscript = torchscript
        self.markers = markers
        self.scalar_ids = scalar_ids
        self.torch_mode = torch_mode
        self.proto = 0
        self.stack: list[Any] = []
        self.metastack: list[list[Any]] = []
        self.memo: dict[int, Any] = {}
        self.end: Optional[int] = None  # position after STOP once loaded
        self.frame_end: Optional[int] = None  # end of the current protocol-4 frame, while inside one

    # -- errors -------------------------------------------------------------------------------
    def corrupt(self, msg: str) -> PickleCorruptError:
        return PickleCorruptError(f"{self.what}: {msg}", offset=self.base + self.op_pos)

    def forbidden(self, msg: str) -> ForbiddenPickleError:
        return ForbiddenPickleError(f"{self.what}: {msg}; nothing was executed", offset=self.base + self.op_pos)

    def charge(self, nbytes: int) -> None:
        budget = self.budget  # inline account update: this runs for most opcodes
        budget.charged += nbytes
        if budget.charged + budget.ops * OP_BYTES > budget.max_bytes:
            budget.charge(0, PickleLimitError, self.what, self.base + self.op_pos)

    def not_torch(self, what: str) -> None:
        """Remember that torch.load(weights_only=True) would refuse this pickle (reported at the end)."""
        if self.budget.deferred is None:  # the first one is reported: build one error, not one per opcode
            self.budget.defer(
                UnsupportedPickleError(
                    f"{self.what} uses {what}, which torch.load(weights_only=True) does not read",
                    offset=self.base + self.op_pos,
                )
            )

    # -- reading ------------------------------------------------------------------------------
    def read(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.corrupt(f"truncated: needs {n} bytes, {len(self.data) - self.pos} left")
        if self.frame_end is not None and self.pos + n > self.frame_end:
            self._leave_frame(n)
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def readline(self) -> bytes:
        end = bytes(self.data[self.pos : self.pos + 64]).find(b"\n")  # most text arguments are short
        if end < 0:
            end = bytes(self.data[self.pos : self.pos + 4096]).find(b"\n")
        if end < 0:
            raise self.corrupt("truncated or overlong text argument")
        if self.frame_end is not None and self.pos + end + 1 > self.frame_end:
            self._leave_frame(end + 1)
        out = bytes(self.data[self.pos : self.pos + end])
        self.pos += end + 1
        return out

    def _leave_frame(self, n: int) -> None:
        """A read past the current frame: allowed only from its very end (then we are outside frames);
        one that straddles the end reads differently in Python's pickle and its C accelerator."""
        if self.pos != self.frame_end:
            raise self.corrupt(f"an argument of {n} bytes runs past the end of its frame")
        self.frame_end = None

    def u(self, fmt: str) -> int:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    # -- stack --------------------------------------------------------------------------------
    def pop(self) -> Any:
        if not self.stack:
            raise self.corrupt("stack underflow")
        return self.stack.pop()

    def top(self) -> Any:
        if not self.stack:
            raise self.corrupt("stack underflow")
        return self.stack[-1]

    def pop_mark(self) -> list[Any]:
        if not self.metastack:
            raise self.corrupt("no MARK to pop to")
        items = self.stack
        self.stack = self.metastack.pop()
        return items

    def push(self, value: Any) -> None:
        self.stack.append(value)

    # -- main loop ----------------------------------------------------------------------------
    def load(self) -> Any:
        budget = self.budget
        limit = budget.max_ops
        torch_mode = self.torch_mode
        try:
            while True:
                self.op_pos = self.pos
                if self.pos >= len(self.data):
                    raise self.corrupt("truncated: no STOP opcode")
                if self.frame_end is not None and self.pos >= self.frame_end:
                    self.frame_end = None  # the opcode starts right after its frame: outside frames
                code = self.data[self.pos]
                self.pos += 1
                budget.ops += 1
                if budget.ops > limit:
                    raise PickleLimitError(
                        f"{self.what}: more than {limit} pickle operations (the limit for a "
                        f"file of {budget.file_size} bytes)",
                        offset=self.base + self.op_pos,
                    )
                if not budget.ops & 0xFFFF and budget.over_ops():
                    self.charge(0)
                if torch_mode and code not in TORCH_OPCODES and budget.deferred is None:
                    self.not_torch(f"opcode {bytes([code])!r}")
                handler = _DISPATCH.get(code)
                if handler is None:
                    raise self.forbidden(f"opcode {bytes([code])!r} is not allowed")
                if handler(self):  # STOP returns True
                    self.end = self.pos
                    return self.result
        except (
            IndexError,
            KeyError,
            ValueError,
            TypeError,
            OverflowError,
            struct.error,
            UnicodeDecodeError,
            AttributeError,
            RuntimeError,
        ) as exc:
            # Defence in depth: opcode handlers validate first; anything left is corruption.
            raise self.corrupt(f"malformed ({type(exc).__name__}: {exc})") from None
        except RecursionError:
            raise PickleLimitError(f"{self.what}: nesting too deep", offset=self.base + self.op_pos) from None
        except MemoryError:
            raise PickleLimitError(f"{self.what}: out of memory", offset=self.base + self.op_pos) from None

    # -- opcodes: structure -------------------------------------------------------------------
    def op_proto(self) -> None:
        proto = self.read(1)[0]
        if proto > 5:
            raise self.corrupt(f"unsupported pickle protocol {proto}")
        self.proto = proto

    def op_frame(self) -> None:
        """A new frame may begin only where the current one ends (Python's pickle refuses otherwise)."""
        n = self.u("<Q")
        if n > len(self.data) - self.pos:
            raise self.corrupt("frame longer than the data")
        if self.frame_end is not None and self.pos != self.frame_end:
            raise self.corrupt("a new frame begins before the end of the current one")
        self.frame_end = self.pos + n if n else None

    def op_stop(self) -> bool:
        self.result = self.pop()
        if self.stack or self.metastack:
            raise self.corrupt("STOP with items left on the stack")
        return True

    def op_mark(self) -> None:
        self.metastack.append(self.stack)
        self.stack = []

    def op_pop(self) -> None:
        if self.stack:
            self.stack.pop()
        else:
            self.pop_mark()

    def op_pop_mark(self) -> None:
        self.pop_mark()

    def op_dup(self) -> None:
        self.push(self.top())

    # -- memo ---------------------------------------------------------------------------------
    def _get(self, idx: int) -> None:
        if idx not in self.memo:
            raise self.corrupt(f"memo index {idx} was never stored")
        self.push(self.memo[idx])

    def _put(self, idx: int) -> None:
        if idx < 0:
            raise self.corrupt("negative memo index")
        if idx not in self.memo:
            self.charge(OBJECT_BYTES)
        self.memo[idx] = self.top()

    def _text_index(self) -> int:
        text = self.readline()
        if not 0 < len(text) <= 10 or not text.isdigit():
            raise self.corrupt(f"bad memo index {text[:20]!r}")
        return int(text)

    def _byte_index(self) -> int:
        return self.read(1)[0]

    def _u32_index(self) -> int:
        return self.u("<I")

    # GET/PUT come in three index encodings each: a text line, one byte, four bytes
    op_get, op_put = _memo_op(_get, _text_index), _memo_op(_put, _text_index)
    op_binget, op_binput = _memo_op(_get, _byte_index), _memo_op(_put, _byte_index)
    op_long_binget, op_long_binput = _memo_op(_get, _u32_index), _memo_op(_put, _u32_index)

    def op_memoize(self) -> None:
        self._put(len(self.memo))

    # -- opcodes: scalars ---------------------------------------------------------------------
    def op_none(self) -> None:
        self.push(None)

    def op_true(self) -> None:
        self.push(True)

    def op_false(self) -> None:
        self.push(False)

    def op_int(self) -> None:
        text = self.readline()
        if text == b"00":
            self.push(False)
        elif text == b"01":
            self.push(True)
        else:
            self.push(self._parse_int(text))

    def op_long(self) -> None:
        text = self.readline()
        self.push(self._parse_int(text[:-1] if text.endswith(b"L") else text))

    def _parse_int(self, text: bytes) -> int:
        """Decimal, as Python reads it (`int(text, 0)`: no leading zeros but for zero itself)."""
        digits = text[1:] if text[:1] in (b"+", b"-") else text
        if (
            len(text) > 64
            or not digits.isdigit()
            or (len(digits) > 1 and digits.startswith(b"0") and digits.strip(b"0"))
        ):
            raise self.corrupt(f"bad integer literal {text[:20]!r}")
        self.charge(OBJECT_BYTES)
        return int(text)

    def op_binint(self) -> None:
        self.charge(32)
        self.push(self.u("<i"))

    def op_binint1(self) -> None:
        self.push(self.read(1)[0])

    def op_binint2(self) -> None:
        self.push(self.u("<H"))

    def _long(self, n: int) -> None:
        if n < 0 or n > self.budget.limits.max_long_bytes:
            raise PickleLimitError(f"{self.what}: integer of {n} bytes", offset=self.base + self.op_pos)
        self.charge(32 + n)
        self.push(int.from_bytes(self.read(n), "little", signed=True))

    def op_long1(self) -> None:
        self._long(self.read(1)[0])

    def op_long4(self) -> None:
        self._long(self.u("<i"))

    def op_float(self) -> None:
        self.charge(32)
        self.push(float(self.readline()))

    def op_binfloat(self) -> None:
        self.charge(32)
        self.push(self.u(">d"))

    def _text(self, n: int, errors: str = "surrogatepass") -> None:
        raw = self.read(n)
        self.charge(OBJECT_BYTES + 4 * n)  # up to 4 bytes per character once decoded
        self.push(str(raw, "utf-8", errors))

    def op_binunicode(self) -> None:
        self._text(self.u("<I"))

    def op_short_binunicode(self) -> None:
        self._text(self.read(1)[0])

    def op_binunicode8(self) -> None:
        self._text(self.u("<Q"))

    def op_unicode(self) -> None:
        self.charge(OBJECT_BYTES + 4 * 4096)
        self.push(self.readline().decode("raw-unicode-escape"))

    def op_binstring(self) -> None:  # Python 2 str, read as torch.load does (strict utf-8)
        self._text(self.u("<i"), "strict")

    def op_short_binstring(self) -> None:
        self._text(self.read(1)[0], "strict")

    def _bytes(self, n: int) -> None:
        # Large payloads (tensor data inside `_load_from_bytes`) stay zero-copy views.
        view = self.read(n)
        self.charge(OBJECT_BYTES + (n if n <= BYTES_COPY_LIMIT else 0))
        self.push(bytes(view) if n <= BYTES_COPY_LIMIT else view)

    def op_binbytes(self) -> None:
        self._bytes(self.u("<I"))

    def op_short_binbytes(self) -> None:
        self._bytes(self.read(1)[0])

    def op_binbytes8(self) -> None:
        self._bytes(self.u("<Q"))

    def op_bytearray8(self) -> None:
        self._bytes(self.u("<Q"))

    # -- opcodes: containers ------------------------------------------------------------------
    def container(self, n: int = 0) -> None:
        """Charge a new container of `n` items (the object, its slots, the graph check's bookkeeping)."""
        self.charge(2 * OBJECT_BYTES + 8 * n)

    def op_empty_dict(self) -> None:
        self.container()
        self.push({})

    def op_empty_list(self) -> None:
        self.container()
        self.push([])

    def op_empty_tuple(self) -> None:
        self.push(())

    def op_empty_set(self) -> None:
        self.container()
        self.push(set())

    def op_tuple(self) -> None:
        items = self.pop_mark()
        self.container(len(items))
        self.push(tuple(items))

    def op_tuple1(self) -> None:
        self.container(1)
        self.push((self.pop(),))

    def op_tuple2(self) -> None:
        self.container(2)
        b = self.pop()
        self.push((self.pop(), b))

    def op_tuple3(self) -> None:
        self.container(3)
        c = self.pop()
        b = self.pop()
        self.push((self.pop(), b, c))

    def op_list(self) -> None:
        items = self.pop_mark()
        self.container(len(items))
        self.push(items)

    def op_dict(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise self.corrupt("DICT with an odd number of items")
        out: dict = {}
        self.container()
        self._set_items(out, items)
        self.push(out)

    def op_frozenset(self) -> None:
        items = self.pop_mark()
        for item in items:
            self._check_key(item)
        self.container(len(items))
        self.charge(ITEM_BYTES * len(items))
        self.push(frozenset(items))

    def op_append(self) -> None:
        value = self.pop()
        self._list_target().append(self._value(value))

    def op_appends(self) -> None:
        items = self.pop_mark()
        target = self._list_target()
        self.charge(8 * len(items))
        target.extend(self._value(v) for v in items)

    def op_setitem(self) -> None:
        value = self.pop()
        key = self.pop()
        self._set_items(self._dict_target(), [key, value])

    def op_setitems(self) -> None:
        items = self.pop_mark()
        if len(items) % 2:
            raise self.corrupt("SETITEMS with an odd number of items")
        self._set_items(self._dict_target(), items)

    def op_additems(self) -> None:
        items = self.pop_mark()
        target = self.top()
        if type(target) is not set:
            raise self.forbidden(f"ADDITEMS on a {type(target).__name__}, not a set")
        for item in items:
            self._check_key(item)
        self.charge(ITEM_BYTES * len(items))
        target.update(items)

    def _list_target(self) -> list:
        target = self.top()
        if type(target) is not list:
            raise self.forbidden(f"APPEND on a {_kind(target)}, only lists may be appended to")
        return target

    def _dict_target(self) -> dict:
        target = self.top()
        if type(target) not in (dict, OrderedDict):
            raise self.forbidden(f"SETITEM on a {_kind(target)}, only dicts may be assigned into")
        return target

    def _set_items(self, target: dict, items: list) -> None:
        self.charge(ITEM_BYTES * (len(items) // 2))
        for i in range(0, len(items), 2):
            key = items[i]
            self._check_key(key)
            target[key] = self._value(items[i + 1])

    def _check_key(self, key: Any) -> None:
        """Keys whose hashing costs a bounded time: no tuples (their hash can be made to collide,
        and validating a nested one at every use multiplies work), no ints that hash alike."""
        if isinstance(key, memoryview):
            raise self.forbidden("bytes used as a dict key or set item")
        if type(key) is int and not -MAX_KEY_INT <= key <= MAX_KEY_INT:
            raise self.forbidden(f"an integer key of {key.bit_length()} bits (such keys hash alike)")
        if type(key) in SAFE_KEY_TYPES:
            return
        raise self.forbidden(f"a {_kind(key)} used as a dict key or set item")

    def _value(self, value: Any) -> Any:
        if isinstance(value, (Global, Storage, ScriptClass)):
            raise self.forbidden(f"a bare {_kind(value)} stored as a value")
        return value

    # -- opcodes: globals and calls -----------------------------------------------------------
    def op_global(self) -> None:
        module = self.readline().decode("utf-8")
        name = self.readline().decode("utf-8")
        self._global(module, name)

    def op_stack_global(self) -> None:
        name = self.pop()
        module = self.pop()
        if type(module) is not str or type(name) is not str:
            raise self.corrupt("STACK_GLOBAL needs two strings")
        self._global(module, name)

    def _global(self, module: str, name: str) -> None:
        if self.torch_mode or self.proto < 3:  # Python 2 names, mapped as torch and pickle map them
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            else:
                module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        self.charge(OBJECT_BYTES)
        if self.torch_mode and ((module, name) in NOT_IN_TORCH or (module == "torch" and name in DTYPE_ALIASES)):
            self.not_torch(f"global {module}.{name}")
        if self.torchscript and is_script_class_name(module):
            self.push(ScriptClass(module, name))
            return
        if self.torchscript and (module, name) in TORCHSCRIPT_CALLABLES:
            self.push(Global(module, name))
            return
        if (module, name) in self.markers:
            self.push(Global(module, name))
            return
        if not is_allowed_global(module, name):
            if _looks_like_class(module, name):
                raise ForbiddenPickleError(
                    f"{self.what}: global {module}.{name} is not on the allowlist; nothing was executed - "
                    "the file pickles a whole Python object (e.g. torch.save(model)); re-save "
                    "model.state_dict() in trusted code",
                    offset=self.base + self.op_pos,
                )
            raise self.forbidden(f"global {module}.{name} is not on the allowlist")
        if module == "torch" and name in DTYPE_NAMES:
            self.push(DTYPE_NAMES[name])
        else:
            self.push(Global(module, name))

    def op_reduce(self) -> None:
        args = self.pop()
        func = self.pop()
        key = (func.module, func.name) if isinstance(func, Global) else None
        if key not in ALLOWED_CALLABLES and not (self.torchscript and key in TORCHSCRIPT_CALLABLES):
            raise self.forbidden(f"call of a {_kind(func)} (only allowlisted rebuild functions may be called)")
        if type(args) is not tuple:
            raise self.corrupt(f"arguments of {func!r} are not a tuple")
        self.push(_CALLS[key](self, args))

    def op_newobj(self) -> None:
        """`cls.__new__(cls)` as TorchScript writes it: only a `__torch__` class, only no arguments."""
        if not self.torchscript:
            self.op_refused()
        args = self.pop()
        cls = self.pop()
        if not isinstance(cls, ScriptClass):
            raise self.forbidden(f"NEWOBJ of a {_kind(cls)} (only __torch__ stand-ins may be created)")
        if type(args) is not tuple or args:
            raise self.forbidden(f"NEWOBJ of {cls!r} with arguments")
        self.container()
        self.push(ScriptObject(repr(cls)))

    def op_build(self) -> None:
        state = self.pop()
        target = self.top()
        if type(target) is ScriptObject:
            self._build_standin(target, state)
            return
        if type(target) is OrderedDict and type(state) is dict and set(state) <= {"_metadata"}:
            meta = state.get("_metadata")
            if meta is not None and type(meta) not in (dict, OrderedDict):
                raise self.forbidden("BUILD sets `_metadata` to something other than a dict")
            if meta is not None:
                target._metadata = meta  # type: ignore[attr-defined]  # as torch's state_dict()
            return
        raise self.forbidden(f"BUILD on a {_kind(target)} (only a state dict's `_metadata` may be set)")

    def _build_standin(self, target: ScriptObject, state: Any) -> None:
        if type(state) is not dict:
            raise self.forbidden(
                f"BUILD of {target.qualname} with a {_kind(state)} state (only an attribute dict is accepted)"
            )
        if target.state is not None:
            raise self.forbidden(f"second BUILD on {target.qualname}")
        for name in state:
            if type(name) is not str:
                raise self.forbidden(f"attribute name of {target.qualname} is a {_kind(name)}, not a string")
        target.state = state

    def op_binpersid(self) -> None:
        pid = self.pop()
        if self.persistent_load is None:
            raise self.forbidden("persistent id where no storages are expected")
        if type(pid) is not tuple and not (self.scalar_ids and type(pid) in (str, int)):
            raise self.corrupt("persistent id is not a tuple")
        self.push(self.persistent_load(pid, self.base + self.op_pos))

    def op_refused(self) -> None:
        raise self.forbidden(f"opcode {bytes([self.data[self.op_pos]])!r} is not allowed")

    # -- checked calls ------------------------------------------------------------------------
    def call_ordered_dict(self, args: tuple) -> OrderedDict:
        if args:
            raise self.forbidden("OrderedDict called with arguments")
        self.container()
        return OrderedDict()

    def _storage_arg(self, value: Any) -> Storage:
        if not isinstance(value, Storage):
            raise self.forbidden(f"tensor rebuilt from a {_kind(value)}, not a storage")
        return value

    def _empty_hooks(self, hooks: Any) -> None:
        if type(hooks) is not OrderedDict or hooks:
            raise self.forbidden("tensor with backward hooks (only an empty OrderedDict is allowed)")

    def _make_tensor(self, storage: Storage, offset: Any, size: Any, stride: Any, requires_grad: Any) -> torch.Tensor:
        where = f"on storage {storage.key!r}"
        offset, size, stride = check_view(storage, offset, size, stride, limits=self.budget.limits, where=where)
        self.charge(TENSOR_BYTES)
        tensor = view_of(storage, offset, size, stride, where=where)
        if type(requires_grad) is not bool:
            raise self.corrupt("requires_grad is not a bool")
        if requires_grad:
            if not (tensor.dtype.is_floating_point or tensor.dtype.is_complex):
                raise self.corrupt(f"requires_grad on a {tensor.dtype} tensor")
            tensor.requires_grad_(True)
        return tensor

    def call_rebuild_tensor_v2(self, args: tuple) -> torch.Tensor:
        if len(args) not in (6, 7):
            raise self.corrupt(f"_rebuild_tensor_v2 with {len(args)} arguments")
        storage, offset, size, stride, requires_grad, hooks = args[:6]
        self._empty_hooks(hooks)
        if len(args) == 7 and args[6] not in (None, {}):
            raise self.forbidden("tensor metadata (only None or an empty dict is allowed)")
        return self._make_tensor(self._storage_arg(storage), offset, size, stride, requires_grad)

    def call_rebuild_tensor(self, args: tuple) -> torch.Tensor:
        if len(args) != 4:
            raise self.corrupt(f"_rebuild_tensor with {len(args)} arguments")
        return self._make_tensor(self._storage_arg(args[0]), args[1], args[2], args[3], False)

    def call_rebuild_parameter(self, args: tuple) -> torch.nn.Parameter:
        if len(args) == 4:
            if args[3] not in ({}, None):
                raise self.forbidden("parameter with Python state")
            args = args[:3]
        if len(args) != 3:
            raise self.corrupt(f"_rebuild_parameter with {len(args)} arguments")
        data, requires_grad, hooks = args
        if not isinstance(data, torch.Tensor) or isinstance(data, torch.nn.Parameter):
            raise self.forbidden(f"parameter rebuilt from a {_kind(data)}")
        self._empty_hooks(hooks)
        if type(requires_grad) is not bool:
            raise self.corrupt("requires_grad is not a bool")
        if requires_grad and not (data.dtype.is_floating_point or data.dtype.is_complex):
            raise self.corrupt(f"requires_grad on a {data.dtype} parameter")
        self.charge(TENSOR_BYTES)
        return torch.nn.Parameter(data.detach(), requires_grad=requires_grad)

    def call_load_from_bytes(self, args: tuple) -> Storage:
        if self.load_from_bytes is None:
            raise self.forbidden("nested torch.storage._load_from_bytes")
        if len(args) != 1 or not isinstance(args[0], (memoryview, bytes)):
            raise self.corrupt("_load_from_bytes needs one bytes argument")
        blob = args[0] if isinstance(args[0], memoryview) else memoryview(args[0])
        return self.load_from_bytes(blob, self.base + self.op_pos)

    def call_codecs_encode(self, args: tuple) -> bytes:
        if len(args) != 2 or type(args[0]) is not str or args[1] not in ("latin1", "latin-1"):
            raise self.forbidden("_codecs.encode outside the protocol-2 bytes idiom")
        self.charge(OBJECT_BYTES + len(args[0]))
        return args[0].encode("latin1")

    def call_set(self, args: tuple) -> set:
        return set(self._iterable_arg(args))

    def call_frozenset(self, args: tuple) -> frozenset:
        return frozenset(self._iterable_arg(args))

    def _iterable_arg(self, args: tuple) -> list:
        """The items of `set(list)`: charged at every call, since one shared list may be called many times."""
        if len(args) == 0:
            self.container()
            return []
        if len(args) != 1 or type(args[0]) not in (list, tuple):
            raise self.corrupt("set() needs one list argument")
        self.container(len(args[0]))
        self.charge(ITEM_BYTES * len(args[0]))
        for item in args[0]:
            self._check_key(item)
        return list(args[0])

    def call_typed_list(self, args: tuple, kinds: tuple[type, ...]) -> list:
        if len(args) != 1 or type(args[0]) is not list or not all(isinstance(v, kinds) for v in args[0]):
            raise self.corrupt(f"typed list helper needs one list of {'/'.join(k.__name__ for k in kinds)}")
        return args[0]

    def call_intlist(self, args: tuple) -> list:
        return self.call_typed_list(args, (int,))

    def call_doublelist(self, args: tuple) -> list:
        return self.call_typed_list(args, (float,))

    def call_boollist(self, args: tuple) -> list:
        return self.call_typed_list(args, (bool,))

    def call_tensorlist(self, args: tuple) -> list:
        return self.call_typed_list(args, (torch.Tensor,))

    def call_restore_type_tag(self, args: tuple) -> Any:
        if len(args) != 2 or type(args[0]) not in (list, dict) or type(args[1]) is not str or len(args[1]) > 4096:
            raise self.corrupt("restore_type_tag needs a list or dict and a type string")
        return args[0]

    def call_size(self, args: tuple) -> torch.Size:
        if len(args) != 1 or type(args[0]) is not tuple or not all(type(v) is int and 0 <= v < 2**63 for v in args[0]):
            raise self.corrupt("torch.Size needs one tuple of non-negative 64-bit ints")
        self.container(len(args[0]))
        return torch.Size(args[0])

    def call_device(self, args: tuple) -> torch.device:
        if (
            not (1 <= len(args) <= 2)
            or type(args[0]) is not str
            or len(args[0]) > 64
            or (len(args) == 2 and (type(args[1]) is not int or not 0 <= args[1] < 2**16))
        ):
            raise self.corrupt("torch.device needs a short string and an optional small index")
        try:
            self.container()
            return torch.device(*args)
        except (RuntimeError, ValueError, TypeError):
            raise self.corrupt(f"bad device {args!r}") from None


def _looks_like_class(module: str, name: str) -> bool:
    """A CamelCase name outside the system modules: most likely a model or layer class."""
    top = module.split(".", 1)[0]
    return top not in _SYSTEM_MODULES and name[:1].isupper() and any(c.islower() for c in name)


def _kind(value: Any) -> str:
    if isinstance(value, ScriptClass):
        return f"class {value!r}"
    if isinstance(value, ScriptObject):
        return f"stand-in {value.qualname}"
    if isinstance(value, torch.Tensor):
        return "tensor"
    if isinstance(value, Storage):
        return "storage"
    if isinstance(value, Global):
        return f"global {value!r}"
    if isinstance(value, memoryview):
        return "bytes"
    return type(value).__name__


_CALLS: dict[tuple[str, str], Callable[[Unpickler, tuple], Any]] = {
    ("collections", "OrderedDict"): Unpickler.call_ordered_dict,
    ("torch._utils", "_rebuild_tensor_v2"): Unpickler.call_rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): Unpickler.call_rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): Unpickler.call_rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): Unpickler.call_rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): Unpickler.call_load_from_bytes,
    ("_codecs", "encode"): Unpickler.call_codecs_encode,
    ("builtins", "set"): Unpickler.call_set,
    ("builtins", "frozenset"): Unpickler.call_frozenset,
    ("torch", "Size"): Unpickler.call_size,
    ("torch", "device"): Unpickler.call_device,
    ("torch.jit._pickle", "build_intlist"): Unpickler.call_intlist,
    ("torch.jit._pickle", "build_doublelist"): Unpickler.call_doublelist,
    ("torch.jit._pickle", "build_boollist"): Unpickler.call_boollist,
    ("torch.jit._pickle", "build_tensorlist"): Unpickler.call_tensorlist,
    ("torch.jit._pickle", "restore_type_tag"): Unpickler.call_restore_type_tag,
}

_OPS: dict[bytes, Callable[[Unpickler], Any]] = {
    b"\x80": Unpickler.op_proto,
    b"\x95": Unpickler.op_frame,
    b".": Unpickler.op_stop,
    b"(": Unpickler.op_mark,
    b"0": Unpickler.op_pop,
    b"1": Unpickler.op_pop_mark,
    b"2": Unpickler.op_dup,
    b"g": Unpickler.op_get,
    b"h": Unpickler.op_binget,
    b"j": Unpickler.op_long_binget,
    b"p": Unpickler.op_put,
    b"q": Unpickler.op_binput,
    b"r": Unpickler.op_long_binput,
    b"\x94": Unpickler.op_memoize,
    b"N": Unpickler.op_none,
    b"\x88": Unpickler.op_true,
    b"\x89": Unpickler.op_false,
    b"I": Unpickler.op_int,
    b"L": Unpickler.op_long,
    b"J": Unpickler.op_binint,
    b"K": Unpickler.op_binint1,
    b"M": Unpickler.op_binint2,
    b"\x8a": Unpickler.op_long1,
    b"\x8b": Unpickler.op_long4,
    b"F": Unpickler.op_float,
    b"G": Unpickler.op_binfloat,
    b"X": Unpickler.op_binunicode,
    b"\x8c": Unpickler.op_short_binunicode,
    b"\x8d": Unpickler.op_binunicode8,
    b"V": Unpickler.op_unicode,
    b"T": Unpickler.op_binstring,
    b"U": Unpickler.op_short_binstring,
    b"B": Unpickler.op_binbytes,
    b"C": Unpickler.op_short_binbytes,
    b"\x8e": Unpickler.op_binbytes8,
    b"\x96": Unpickler.op_bytearray8,
    b"}": Unpickler.op_empty_dict,
    b"]": Unpickler.op_empty_list,
    b")": Unpickler.op_empty_tuple,
    b"\x8f": Unpickler.op_empty_set,
    b"t": Unpickler.op_tuple,
    b"\x85": Unpickler.op_tuple1,
    b"\x86": Unpickler.op_tuple2,
    b"\x87": Unpickler.op_tuple3,
    b"l": Unpickler.op_list,
    b"d": Unpickler.op_dict,
    b"\x91": Unpickler.op_frozenset,
    b"a": Unpickler.op_append,
    b"e": Unpickler.op_appends,
    b"s": Unpickler.op_setitem,
    b"u": Unpickler.op_setitems,
    b"\x90": Unpickler.op_additems,
    b"c": Unpickler.op_global,
    b"\x93": Unpickler.op_stack_global,
    b"R": Unpickler.op_reduce,
    b"b": Unpickler.op_build,
    b"Q": Unpickler.op_binpersid,
    # Refused by name (so the message says "not allowed" rather than "unknown"):
    b"i": Unpickler.op_refused,
    b"o": Unpickler.op_refused,
    b"\x81": Unpickler.op_newobj,
    b"\x92": Unpickler.op_refused,
    b"\x82": Unpickler.op_refused,
    b"\x83": Unpickler.op_refused,
    b"\x84": Unpickler.op_refused,
    b"P": Unpickler.op_refused,
    b"S": Unpickler.op_refused,
    b"\x97": Unpickler.op_refused,
    b"\x98": Unpickler.op_refused,
}
_DISPATCH: dict[int, Callable[[Unpickler], Any]] = {k[0]: v for k, v in _OPS.items()}
