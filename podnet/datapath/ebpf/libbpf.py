"""A thin, typed ctypes binding of the parts of libbpf (``libbpf.so.1``) podnet uses.

Every call that can fail raises :class:`BpfError` with the operation, the object and the errno text.
libbpf 1.x returns ``-errno`` from int functions and NULL (with ``errno`` set) from constructors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from collections import deque
from collections.abc import Callable
from typing import Any

from podnet.errors import PodnetError

BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2
BPF_TC_INGRESS = 1
BPF_TC_EGRESS = 2
BPF_TC_F_REPLACE = 1


class BpfError(PodnetError):
    """A libbpf or bpf(2) call failed."""

    cni_code = 110

    def __init__(self, what: str, err: int) -> None:
        super().__init__(f"{what}: {os.strerror(err)} (errno {err})")
        self.errno = err


class TcHook(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("ifindex", ctypes.c_int),
        ("attach_point", ctypes.c_int),
        ("parent", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


class TcOpts(ctypes.Structure):
    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("prog_fd", ctypes.c_int),
        ("flags", ctypes.c_uint32),
        ("prog_id", ctypes.c_uint32),
        ("handle", ctypes.c_uint32),
        ("priority", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


SampleFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
PrintFn = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)

log = logging.getLogger("podnet.datapath.ebpf.libbpf")
#: libbpf's latest messages (the verifier's log among them), for error details.
recent: deque[str] = deque(maxlen=200)
_lib: ctypes.CDLL | None = None
_libc = ctypes.CDLL(None)
_libc.vsnprintf.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_void_p]
_LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG}


def _print(level: int, fmt: bytes | None, args: int | None) -> int:
    """libbpf's print callback: format with vsnprintf (va_list arrives as a pointer) and log it."""
    buf = ctypes.create_string_buffer(4096)
    _libc.vsnprintf(buf, len(buf), fmt, args)
    text = buf.value.decode(errors="replace").rstrip()
    recent.append(text)
    if "Exclusivity flag on" in text:  # bpf_tc_hook_create on an existing clsact: expected, handled
        level = 2
    log.log(_LEVELS.get(level, logging.DEBUG), "%s", text)
    return 0


_print_cb = PrintFn(_print)


def lib() -> ctypes.CDLL:
    """Load ``libbpf.so.1`` once and declare the signatures used."""
    global _lib
    if _lib is not None:
        return _lib
    name = "libbpf.so.1"
    try:
        handle = ctypes.CDLL(name, use_errno=True)
    except OSError as e:
        found = ctypes.util.find_library("bpf")
        if found is None:
            raise PodnetError(f"cannot load {name}: {e} (install Debian's libbpf1)") from e
        handle = ctypes.CDLL(found, use_errno=True)
    p, i = ctypes.c_void_p, ctypes.c_int
    sigs: dict[str, tuple[Any, list[Any]]] = {
        "bpf_object__open_file": (p, [ctypes.c_char_p, p]),
        "bpf_object__load": (i, [p]),
        "bpf_object__close": (None, [p]),
        "bpf_object__find_map_by_name": (p, [p, ctypes.c_char_p]),
        "bpf_object__find_program_by_name": (p, [p, ctypes.c_char_p]),
        "bpf_map__set_pin_path": (i, [p, ctypes.c_char_p]),
        "bpf_map__fd": (i, [p]),
        "bpf_program__fd": (i, [p]),
        "bpf_program__pin": (i, [p, ctypes.c_char_p]),
        "bpf_map_update_elem": (i, [i, p, p, ctypes.c_uint64]),
        "bpf_map_lookup_elem": (i, [i, p, p]),
        "bpf_map_delete_elem": (i, [i, p]),
        "bpf_map_get_next_key": (i, [i, p, p]),
        "bpf_obj_get": (i, [ctypes.c_char_p]),
        "bpf_obj_get_info_by_fd": (i, [i, p, ctypes.POINTER(ctypes.c_uint32)]),
        "bpf_map__max_entries": (ctypes.c_uint32, [p]),
        "bpf_tc_hook_create": (i, [ctypes.POINTER(TcHook)]),
        "bpf_tc_hook_destroy": (i, [ctypes.POINTER(TcHook)]),
        "bpf_tc_attach": (i, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
        "bpf_tc_detach": (i, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
        "bpf_tc_query": (i, [ctypes.POINTER(TcHook), ctypes.POINTER(TcOpts)]),
        "ring_buffer__new": (p, [i, SampleFn, p, p]),
        "ring_buffer__poll": (i, [p, i]),
        "ring_buffer__consume": (i, [p]),
        "ring_buffer__free": (None, [p]),
        "libbpf_num_possible_cpus": (i, []),
        "libbpf_set_print": (p, [PrintFn]),
    }
    for fn, (res, args) in sigs.items():
        f = getattr(handle, fn)
        f.restype = res
        f.argtypes = args
    handle.libbpf_set_print(_print_cb)
    _lib = handle
    return handle


def pinned_map_sizes(path: str) -> tuple[int, int, int]:
    """``key_size``, ``value_size`` and ``max_entries`` (for a ring buffer: its size in bytes) of the map
    pinned at ``path``."""
    handle = lib()
    fd = check(handle.bpf_obj_get(path.encode()), f"open pinned map {path}")
    try:
        info = ctypes.create_string_buffer(80)  # struct bpf_map_info: type, id, key_size, value_size, max_entries, ...
        size = ctypes.c_uint32(len(info))
        check(handle.bpf_obj_get_info_by_fd(fd, info, ctypes.byref(size)), f"info of pinned map {path}")
        key_size, value_size, max_entries = (int.from_bytes(info.raw[i : i + 4], "little") for i in (8, 12, 16))
        return key_size, value_size, max_entries
    finally:
        os.close(fd)


def check(rc: int, what: str) -> int:
    """Raise for a negative libbpf return code; pass the value through otherwise."""
    if rc < 0:
        raise BpfError(what, -rc if rc != -1 else (ctypes.get_errno() or 1))
    return rc


def check_ptr(ptr: int | None, what: str) -> int:
    if not ptr:
        raise BpfError(what, ctypes.get_errno() or 22)
    return ptr


def tc_hook(ifindex: int, attach_point: int) -> TcHook:
    return TcHook(ctypes.sizeof(TcHook), ifindex, attach_point, 0, 0)


def tc_opts(prog_fd: int = 0, flags: int = 0, handle: int = 0, priority: int = 0) -> TcOpts:
    return TcOpts(ctypes.sizeof(TcOpts), prog_fd, flags, 0, handle, priority, 0)


class MapFd:
    """Element operations on one map by file descriptor, with fixed key and value sizes.

    ``value_size`` of a per-CPU map is the size of one CPU's value; lookups return all CPUs' values.
    """

    def __init__(self, fd: int, key_size: int, value_size: int, name: str, percpu: bool = False) -> None:
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self.name = name
        self.percpu = percpu

    def _value_buf(self) -> ctypes.Array[ctypes.c_char]:
        n = self.value_size
        if self.percpu:
            n = ((n + 7) // 8) * 8 * lib().libbpf_num_possible_cpus()
        return ctypes.create_string_buffer(n)

    def update(self, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
        assert len(key) == self.key_size and len(value) == self.value_size, (self.name, len(key), len(value))
        check(lib().bpf_map_update_elem(self.fd, key, value, flags), f"update {self.name}")

    def lookup(self, key: bytes) -> bytes | None:
        buf = self._value_buf()
        rc = lib().bpf_map_lookup_elem(self.fd, key, buf)
        if rc < 0:
            err = -rc if rc != -1 else ctypes.get_errno()
            if err == 2:  # ENOENT
                return None
            raise BpfError(f"lookup {self.name}", err)
        return buf.raw

    def delete(self, key: bytes) -> bool:
        rc = lib().bpf_map_delete_elem(self.fd, key)
        if rc < 0:
            err = -rc if rc != -1 else ctypes.get_errno()
            if err == 2:
                return False
            raise BpfError(f"delete from {self.name}", err)
        return True

    def key_list(self) -> list[bytes]:
        out: list[bytes] = []
        cur = ctypes.create_string_buffer(self.key_size)
        nxt = ctypes.create_string_buffer(self.key_size)
        prev: ctypes.Array[ctypes.c_char] | None = None
        while True:
            rc = lib().bpf_map_get_next_key(self.fd, prev, nxt)
            if rc < 0:
                break
            out.append(nxt.raw)
            ctypes.memmove(cur, nxt, self.key_size)
            prev = cur
        return out

    def entries(self) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        for k in self.key_list():
            v = self.lookup(k)
            if v is not None:
                out.append((k, v))
        return out


class RingBuffer:
    """A libbpf ring buffer over one map; ``poll`` hands each record's bytes to ``on_record``."""

    def __init__(self, map_fd: int, on_record: Callable[[bytes], None]) -> None:
        def sample(_ctx: int | None, data: int | None, size: int) -> int:
            if not data:
                return 0
            try:
                on_record(ctypes.string_at(data, size))
            except Exception:  # never let an exception cross the C callback
                return 0
            return 0

        self._cb = SampleFn(sample)  # keep a reference: libbpf calls it later
        self._rb: int | None = check_ptr(lib().ring_buffer__new(map_fd, self._cb, None, None), "ring_buffer__new")

    def poll(self, timeout_ms: int) -> int:
        if self._rb is None:
            return 0
        rc = lib().ring_buffer__poll(self._rb, timeout_ms)
        if rc == -4:  # EINTR
            return 0
        return check(rc, "ring_buffer__poll")

    def close(self) -> None:
        if self._rb is not None:
            lib().ring_buffer__free(self._rb)
            self._rb = None
