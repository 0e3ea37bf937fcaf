"""Read a PyTorch ``state_dict`` file (``torch.save``) into numpy arrays, without importing torch.

Both torch serialisation formats are supported:

- **zip** (default since torch 1.6): a zip archive ``<name>/data.pkl`` (the object pickle; tensors are
  reduced to ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` and storages are
  persistent ids ``("storage", <torch.XStorage>, key, location, numel)``), one raw record
  ``<name>/data/<key>`` per storage and, in newer files, a ``<name>/byteorder`` record.
- **legacy** (torch < 1.6, or ``_use_new_zipfile_serialization=False``): consecutive pickles -- the magic
  number, the protocol version (1001), a sys-info dict (endianness), the object pickle (persistent ids
  ``("storage", type, key, location, numel, view_metadata)``), the sorted list of storage keys -- and then,
  per key, an int64 element count followed by that storage's raw bytes. The pytorch-fid Inception weights
  (saved 2019) are in this format.

Unpickling is restricted: ``find_class`` only resolves ``collections.OrderedDict``, the torch tensor/
parameter rebuild functions, storage types and dtypes, each mapped to a small numpy-building stand-in, so
a file cannot run arbitrary code. The layout follows torch's ``torch/serialization.py``; nothing here is
torch code.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Dict, Optional

import numpy as np

from gm_jax.errors import GMJaxError

__all__ = ["read_torch_state_dict", "read_torch_pickle"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype (little-endian base; byte order applied at read time).
_STORAGE_DTYPES = {
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16, "CharStorage": np.int8,
    "ByteStorage": np.uint8, "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,  # raw bytes; the tensor's dtype comes from _rebuild_tensor_v3
}
# torch dtype attribute name -> numpy dtype (for _rebuild_tensor_v3, which pickles e.g. ``torch.uint16``).
_TORCH_DTYPES = {
    "float32": np.float32, "float": np.float32, "float64": np.float64, "double": np.float64,
    "float16": np.float16, "half": np.float16, "int64": np.int64, "long": np.int64, "int32": np.int32,
    "int": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_,
    "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
}


class _StorageType:
    """Stand-in for ``torch.XStorage`` / a torch dtype: only carries the numpy dtype."""

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)


class _StorageRef:
    """A storage named in the pickle; its bytes are attached later (legacy files store them after it)."""

    def __init__(self, key: str, dtype: np.dtype, elem_offset: int = 0, numel: Optional[int] = None):
        self.key, self.dtype, self.elem_offset, self.numel = key, dtype, elem_offset, numel


class _TensorRef:
    """A tensor view: storage + element offset + size + stride (in elements), as torch pickles it."""

    def __init__(self, storage: _StorageRef, offset: int, size, stride, dtype: Optional[np.dtype] = None):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        self.dtype = storage.dtype if dtype is None else dtype


def _rebuild_tensor(storage, storage_offset, size, stride, *_unused):
    return _TensorRef(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    return _TensorRef(storage, storage_offset, size, stride, dtype=dtype.dtype)


def _rebuild_parameter(data, *_unused):
    return data  # a Parameter is its tensor here; requires_grad/hooks/state are irrelevant


_REBUILDERS = {
    "_rebuild_tensor": _rebuild_tensor, "_rebuild_tensor_v2": _rebuild_tensor,
    "_rebuild_tensor_v3": _rebuild_tensor_v3, "_rebuild_parameter": _rebuild_parameter,
    "_rebuild_parameter_with_state": _rebuild_parameter,
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals a tensor state dict needs; collects storage persistent ids."""

    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path
        self.storages: Dict[str, _StorageRef] = {}

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name in _REBUILDERS:
            return _REBUILDERS[name]
        if (module == "torch" and name in _STORAGE_DTYPES) or (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and name in _TORCH_DTYPES:
            return _StorageType(_TORCH_DTYPES[name])
        raise GMJaxError(f"{self._path}: refusing to unpickle {module}.{name}; only files of plain torch "
                         f"tensors (a state_dict) can be read without torch")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise GMJaxError(f"{self._path}: unexpected persistent id {pid!r}; not a torch tensor file")
        typename = pid[0].decode() if isinstance(pid[0], bytes) else pid[0]
        if typename != "storage" or not isinstance(pid[1], _StorageType):
            raise GMJaxError(f"{self._path}: unsupported persistent object {typename!r}; only tensor "
                             f"storages can be read without torch")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        root = self.storages.setdefault(key, _StorageRef(key, storage_type.dtype, 0, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # legacy storage view: (view_key, element offset, view numel)
            return _StorageRef(key, storage_type.dtype, int(view[1]), int(view[2]))
        return root


def _materialize(t: _TensorRef, raw: Dict[str, bytes], byteorder: str, path: str) -> np.ndarray:
    if t.storage.key not in raw:
        raise GMJaxError(f"{path}: storage {t.storage.key!r} is missing; the file is truncated or corrupt")
    dt = t.dtype.newbyteorder(byteorder)
    buf = raw[t.storage.key]
    base = t.storage.elem_offset * t.storage.dtype.itemsize  # legacy views start inside the root storage
    n = (len(buf) - base) // dt.itemsize
    flat = np.frombuffer(buf, dtype=dt, count=max(n, 0), offset=base)
    if any(s == 0 for s in t.size):
        return np.zeros(t.size, dtype=t.dtype)
    if len(t.size) != len(t.stride) or any(st < 0 for st in t.stride):
        raise GMJaxError(f"{path}: tensor with size {t.size} and stride {t.stride} is malformed")
    last = t.offset + sum((s - 1) * st for s, st in zip(t.size, t.stride))
    if t.offset < 0 or last >= n:
        raise GMJaxError(f"{path}: tensor (offset {t.offset}, size {t.size}, stride {t.stride}) reads past "
                         f"its storage of {n} elements; the file is truncated or corrupt")
    view = np.lib.stride_tricks.as_strided(flat[t.offset:], shape=t.size,
                                           strides=tuple(st * dt.itemsize for st in t.stride), writeable=False)
    return np.array(view, dtype=t.dtype)  # copy: contiguous, native byte order, owns its memory


def _resolve(obj: Any, raw: Dict[str, bytes], byteorder: str, path: str) -> Any:
    if isinstance(obj, _TensorRef):
        return _materialize(obj, raw, byteorder, path)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _resolve(v, raw, byteorder, path)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_resolve(v, raw, byteorder, path) for v in obj)
    return obj


def _read_zip(path: str):
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(pkl) != 1:
            raise GMJaxError(f"{path}: zip archive without a single data.pkl; not a torch.save file")
        prefix = pkl[0][: -len("data.pkl")]
        byteorder = "<"
        if prefix + "byteorder" in names:
            byteorder = "<" if zf.read(prefix + "byteorder").decode().strip() == "little" else ">"
        unpickler = _RestrictedUnpickler(io.BytesIO(zf.read(pkl[0])), path)
        obj = unpickler.load()
        raw = {}
        for key in unpickler.storages:
            record = f"{prefix}data/{key}"
            if record not in names:
                raise GMJaxError(f"{path}: storage record {record} is missing; the file is truncated or corrupt")
            raw[key] = zf.read(record)
    return obj, raw, byteorder


def _read_legacy(path: str):
    with open(path, "rb") as f:
        try:
            magic = _RestrictedUnpickler(f, path).load()
            protocol = _RestrictedUnpickler(f, path).load()
            sys_info = _RestrictedUnpickler(f, path).load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise GMJaxError(f"{path} is not a torch.save file ({e}); pass the .pth state dict") from None
        if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
            raise GMJaxError(f"{path} is not a torch.save file (bad magic number or protocol); pass the .pth "
                             f"state dict")
        little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
        byteorder = "<" if little else ">"
        unpickler = _RestrictedUnpickler(f, path)
        obj = unpickler.load()
        keys = _RestrictedUnpickler(f, path).load()
        raw = {}
        for key in keys:
            key = str(key)
            if key not in unpickler.storages:
                raise GMJaxError(f"{path}: storage {key!r} has no entry in the object pickle; corrupt file")
            head = f.read(8)
            if len(head) != 8:
                raise GMJaxError(f"{path}: truncated before storage {key!r}; download the file again")
            (numel,) = struct.unpack(byteorder + "q", head)
            nbytes = numel * unpickler.storages[key].dtype.itemsize
            data = f.read(nbytes)
            if len(data) != nbytes:
                raise GMJaxError(f"{path}: storage {key!r} is truncated ({len(data)} of {nbytes} bytes); "
                                 f"download the file again")
            raw[key] = data
    return obj, raw, byteorder


def read_torch_pickle(path: str) -> Any:
    """Load a ``torch.save`` file (zip or legacy format) of plain tensors; tensors become numpy arrays.

    Dicts (OrderedDict kept), lists and tuples are rebuilt; anything else in the pickle (modules, custom
    classes) is refused with GMJaxError.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GMJaxError(f"torch file not found at {path}; pass the path of a .pth file")
    try:
        obj, raw, byteorder = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except GMJaxError:
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as e:
        raise GMJaxError(f"{path} could not be read as a torch.save file ({type(e).__name__}: {e}); "
                         f"download it again") from None
    return _resolve(obj, raw, byteorder, path)


def read_torch_state_dict(path: str) -> Dict[str, np.ndarray]:
    """Read a torch ``state_dict`` file into ``{name: np.ndarray}`` without torch.

    Accepts a top-level mapping of tensors, or a checkpoint dict whose ``"state_dict"`` entry is one.
    Arrays keep the tensor's dtype (float32/float64/float16/int64/...) and shape (torch layout, e.g. OIHW
    conv kernels), are C-contiguous copies, and follow the tensors' strides and storage offsets.
    """
    obj = read_torch_pickle(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise GMJaxError(f"{path} holds a {type(obj).__name__}, not a state dict; save model.state_dict()")
    bad = [k for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise GMJaxError(f"{path}: entries {bad[:3]} are not tensors; save model.state_dict()")
    return dict(obj)
