"""The one weight set of a variant: the safetensors files vLLM and transformers both load.

The loaders choose differently from the same folder. vLLM (`default_loader`) loads every top-level
`*.safetensors`, narrowed to the files `model.safetensors.index.json` names when that index exists;
transformers loads `model.safetensors` when it exists and the index's shards otherwise. A folder
where those choices differ holds two models: the gate would judge one and production serve the
other. So a folder is read only when every loader takes the same set:

- with an index: it names every top-level `*.safetensors` and only existing files; a
  `model.safetensors` beside it is one of its shards and the only one (else transformers reads it
  alone); every tensor sits in the shard the index says, once;
- without one: a single `model.safetensors` and no other `*.safetensors`;
- no `*.safetensors` in sub-folders (no loader reads them) and every header well-formed, its data
  within the file.

`weight_set(source)` reads only the headers (a few KB of each file), from a local folder or from a
Git revision, so the zoo check can run it without exporting gigabytes. `served_files(folder)` is
the listing a model server is started on.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from bot.core.errors import InputError

SINGLE = "model.safetensors"
INDEX = "model.safetensors.index.json"
SUFFIX = ".safetensors"
MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
DTYPE_BYTES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "F8_E8M0": 1, "F4": 0.5, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}


@dataclass(frozen=True)
class Tensor:
    name: str
    file: str
    dtype: str
    shape: tuple[int, ...]
    start: int  # byte offset of the data in the file (after the header)
    end: int

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class WeightSet:
    files: tuple[str, ...]  # relative to the weights folder, the order loaders read them
    index: str | None
    tensors: Mapping[str, Tensor]

    def read(self, source: "Source", tensor: Tensor, limit: int) -> bytes | None:
        """A small tensor's bytes (e.g. compressed-tensors' `weight_shape`), or None when it lies
        beyond ``limit`` bytes from the file's start (reading there would mean the whole file)."""
        header_end = 8 + source.header_size(tensor.file)
        if header_end + tensor.end > limit:
            return None
        data = source.head(tensor.file, header_end + tensor.end)
        return data[header_end + tensor.start:header_end + tensor.end]


class Source:
    """Files of one weights folder: names relative to it, sizes, and their first bytes."""

    def __init__(self, names: list[str], size: Callable[[str], int], head: Callable[[str, int], bytes]) -> None:
        self.names = sorted(names)
        self.size = size
        self._head = head
        self._headers: dict[str, int] = {}
        self._read: dict[str, bytes] = {}
        self._asked: dict[str, int] = {}

    def head(self, name: str, n: int) -> bytes:
        """The first ``n`` bytes, read at least 64 KB at a time (a header and the small tensors
        stored first usually come in one read)."""
        have = self._read.get(name, b"")
        if n > len(have) and not (have and len(have) < self._asked.get(name, 0)):
            have = self._head(name, max(n, 64 * 1024))
            self._asked[name] = max(n, 64 * 1024)
            self._read[name] = have
        return have[:n]

    def header_size(self, name: str) -> int:
        if name not in self._headers:
            self._headers[name] = struct.unpack("<Q", self.head(name, 8).ljust(8, b"\0"))[0]
        return self._headers[name]

    @classmethod
    def folder(cls, root: Path) -> "Source":
        root = Path(root)
        names = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and p.name != ".complete"]

        def head(name: str, n: int) -> bytes:
            with open(root / name, "rb") as f:
                return f.read(n)

        return cls(names, lambda name: os.path.getsize(root / name), head)

    @classmethod
    def git(cls, reader, rev: str, folder: str) -> "Source":
        files = reader.list_files(rev, folder)
        names = [p[len(folder) + 1:] for p in files]
        return cls(names, lambda name: reader.blob_bytes(rev, [f"{folder}/{name}"]),
                   lambda name, n: reader.read_head(rev, f"{folder}/{name}", n) or b"")


def has_weights(source: Source) -> bool:
    return any(n.endswith(SUFFIX) or n.endswith(".safetensors.index.json") for n in source.names)


def weight_set(source: Source, *, file: str, field: str = "weights.path") -> WeightSet:
    """The set every loader reads; InputError naming ``file``/``field`` when loaders would differ."""

    def refuse(message: str, fix: str):
        raise InputError(file, field, message, fix)

    nested = [n for n in source.names if "/" in n and (n.endswith(SUFFIX) or n.endswith(".index.json"))]
    if nested:
        refuse(f"the weights folder holds {', '.join(nested[:3])} in a sub-folder, which no loader reads",
               "keep every weights file at the top of the weights folder, or remove it")
    shards = [n for n in source.names if "/" not in n and n.endswith(SUFFIX)]
    indexes = [n for n in source.names if "/" not in n and n.endswith(".safetensors.index.json")]
    if [i for i in indexes if i != INDEX]:
        refuse(f"the weights folder holds {', '.join(i for i in indexes if i != INDEX)}, an index loaders do not "
               f"all read", f"name the index {INDEX}, as save_pretrained does")
    if not shards and not indexes:
        return WeightSet((), None, {})
    if INDEX in indexes:
        weight_map = _index_map(source, file, field)
        named = sorted(set(weight_map.values()))
        missing = [n for n in named if n not in shards]
        if missing:
            refuse(f"{INDEX} names {', '.join(missing[:3])}, which the folder does not hold", "commit every shard it names")
        unnamed = [n for n in shards if n not in named]
        if unnamed:
            refuse(f"the weights folder holds {', '.join(unnamed[:3])}, which {INDEX} does not name: vLLM skips "
                   + ("it, while transformers loads model.safetensors alone: two different models"
                      if SINGLE in unnamed else "it, so its tensors are weights no loader reads"),
                   "remove it, or save the model again so the index and the shards agree")
        if SINGLE in named and len(named) > 1:
            refuse(f"{INDEX} shards the model over {len(named)} files, one of them {SINGLE}, which transformers "
                   "loads alone while vLLM loads every shard", "save the model again (save_pretrained) so the shards "
                   "are named model-0000N-of-0000M.safetensors")
        files = tuple(named)
    else:
        if shards != [SINGLE]:
            refuse(f"the weights folder holds {', '.join(shards[:3])} without {INDEX}: vLLM would load every "
                   f"*.safetensors, transformers only {SINGLE}",
                   f"keep the model in one {SINGLE}, or save it sharded with its {INDEX}")
        weight_map = None
        files = (SINGLE,)
    tensors: dict[str, Tensor] = {}
    for name in files:
        for tensor in _header(source, name, file, field):
            if tensor.name in tensors:
                refuse(f"tensor {tensor.name} is in both {tensors[tensor.name].file} and {name}: which one a loader "
                       "keeps depends on the loader", "save the model again so each tensor is stored once")
            tensors[tensor.name] = tensor
    if weight_map is not None:
        stray = sorted(t for t in tensors if t not in weight_map)
        absent = sorted(t for t in weight_map if t not in tensors)
        moved = sorted(t for t, f in weight_map.items() if t in tensors and tensors[t].file != f)
        for what, names in (("are in the shards but not in", stray), ("are named by but missing from the shards of", absent),
                            ("are in another shard than", moved)):
            if names:
                refuse(f"tensors {', '.join(names[:3])}{' and more' if len(names) > 3 else ''} {what} {INDEX}: "
                       "vLLM reads the shards, transformers follows the index", "save the model again so they agree")
    return WeightSet(files, INDEX if weight_map is not None else None, tensors)


def _index_map(source: Source, file: str, field: str) -> dict[str, str]:
    size = source.size(INDEX)
    if size > MAX_HEADER:
        raise InputError(file, field, f"{INDEX} is {size:,} bytes, too large to be an index", "save the model again")
    try:
        data = json.loads(source.head(INDEX, size).decode("utf-8"))
        weight_map = data["weight_map"]
        if not isinstance(weight_map, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in weight_map.items()):
            raise ValueError("weight_map must map tensor names to file names")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise InputError(file, field, f"{INDEX} is not a safetensors index: {exc}",
                         "save the model again with save_pretrained") from None
    bad = [v for v in weight_map.values() if "/" in v or not v.endswith(SUFFIX)]
    if bad:
        raise InputError(file, field, f"{INDEX} names {bad[0]!r}, not a safetensors file beside it",
                         "save the model again with save_pretrained")
    return weight_map


def _header(source: Source, name: str, file: str, field: str) -> list[Tensor]:
    """A safetensors file's tensors from its header, with the checks safetensors itself makes."""
    def bad(why: str):
        raise InputError(file, field, f"{name} is not a valid safetensors file: {why}",
                         "save the weights again with save_pretrained(safe_serialization=True)")

    size = source.size(name)
    if size < 8:
        bad("shorter than its 8-byte header length")
    n = source.header_size(name)
    if n > MAX_HEADER or 8 + n > size:
        bad(f"its header claims {n:,} bytes")
    try:
        header: Any = json.loads(source.head(name, 8 + n)[8:].decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        bad(f"its header is not JSON ({exc})")
    if not isinstance(header, dict):
        bad("its header is not a JSON object")
    tensors = []
    for tname, info in header.items():
        if tname == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = info["dtype"], tuple(int(d) for d in info["shape"]), info["data_offsets"]
            if dtype not in DTYPE_BYTES or not (0 <= start <= end) or not isinstance(start, int) or not isinstance(end, int):
                raise ValueError
        except (KeyError, TypeError, ValueError):
            bad(f"tensor {tname!r} has no valid dtype, shape and data_offsets")
        tensor = Tensor(tname, name, dtype, shape, start, end)
        if tensor.nbytes != int(tensor.numel * DTYPE_BYTES[dtype] + 0.5):
            bad(f"tensor {tname!r} ({dtype}{list(shape)}) takes {tensor.nbytes:,} bytes, not {tensor.numel * DTYPE_BYTES[dtype]:,g}")
        tensors.append(tensor)
    data = size - 8 - n
    spans = sorted((t.start, t.end, t.name) for t in tensors)
    cursor = 0
    for start, end, tname in spans:
        if start != cursor:
            bad(f"tensor {tname!r} starts at {start:,}, not where the one before it ends ({cursor:,}): overlapping or "
                "hidden bytes")
        cursor = end
    if cursor != data:
        bad(f"its tensors cover {cursor:,} bytes of the {data:,} after the header")
    return tensors


def served_files(folder: Path | str) -> list[Path]:
    """The safetensors files a server started on ``folder`` loads (what the gate judged), after
    `weight_set` accepted the folder; [] for a folder without weights."""
    root = Path(folder)
    chosen = weight_set(Source.folder(root), file=str(root))
    return [root / name for name in chosen.files]
