"""YAML loading for untrusted files: safe loader only, errors that name the file and line, and
bounded work: a file's size and the size of its documents once aliases are expanded are capped.

An alias (`*a`) costs nothing to parse (the loader shares the anchored object), but every later
walk over the data (`json.dumps`, rendering, comparing canary steps) expands it: nine aliases of
nine aliases, nine levels deep, is 600 bytes of YAML and 387 million nodes. Aliases stay allowed
(Kubernetes tooling accepts them) as long as the expanded documents stay under `MAX_NODES`.

Without aliases the size bounds the work, but not well enough: building Python objects costs
about 13 s per million nodes here, and 15 MB of `[0,0,0,...]` is 7 million. So a file above
`COUNT_ABOVE` bytes has its nodes counted first (libyaml's events, about a tenth of the cost of
loading), and refused at `MAX_NODES`.
"""

from __future__ import annotations

from typing import Any

import yaml

from bot.core.errors import InputError


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """The safe loader, libyaml's when present (parsing thousands of manifests is the hot path of
    `check`), with its tag resolution remembered: the composer asks the Python resolver about every
    node, and without path resolvers (the safe loader has none) the answer depends only on the
    node's kind, value and implicitness."""

    _tags: dict = {}

    def resolve(self, kind, value, implicit):
        key = (kind, value, implicit)
        tag = self._tags.get(key)
        if tag is None:
            tag = super().resolve(kind, value, implicit)
            if len(self._tags) > 100_000:  # bounded, whatever a process reads
                self._tags.clear()
            if value is None or len(value) <= 64:  # short scalars repeat (keys, kinds, flags); long ones do not
                self._tags[key] = tag
        return tag

    def descend_resolver(self, current_node, current_index):
        pass  # path resolvers only

    def ascend_resolver(self):
        pass


assert not _Loader.yaml_path_resolvers
MAX_BYTES = 16 * 1024 * 1024
MAX_NODES = 1_000_000  # scalars, sequences and mappings, aliases counted as what they expand to
COUNT_ABOVE = 512 * 1024  # below it, a file cannot hold enough nodes to matter
_SIZE_FIX = "keep policy, manifests and variant metadata small: large data belongs in files the bot does not parse"


def _yaml_error(file: str, exc: yaml.YAMLError) -> InputError:
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return InputError(file, where, f"malformed YAML: {problem}", "correct the YAML syntax; yamllint shows the exact spot")


def check_size(text: str, file: str) -> None:
    """InputError when ``text`` is too large, or expands to too many nodes through its aliases."""
    if len(text) > MAX_BYTES:
        raise InputError(file, "", f"is {len(text):,} characters, more than the {MAX_BYTES:,} the bot reads", _SIZE_FIX)
    if "*" not in text or "&" not in text:
        if len(text) > COUNT_ABOVE:
            _count_nodes(text, file)
        return  # no alias can refer to an anchor: the nodes are what the text holds
    sizes: dict[str, int] = {}  # anchor -> nodes it expands to
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, nodes so far) of each collection being read
    total = 0

    def add(n: int) -> None:
        nonlocal total
        if open_nodes:
            anchor, count = open_nodes[-1]
            open_nodes[-1] = (anchor, count + n)
        else:
            total += n

    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                mark = event.start_mark
                raise InputError(file, f"line {mark.line + 1}, column {mark.column + 1}",
                                 f"alias *{event.anchor} refers to the node that contains it (endless data)",
                                 "write the values out instead of a self-referring alias")
            add(sizes.get(event.anchor, 1))
        elif isinstance(event, yaml.ScalarEvent):
            if event.anchor:
                sizes[event.anchor] = 1
            add(1)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            open_nodes.append((event.anchor, 1))
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            anchor, count = open_nodes.pop()
            if anchor:
                sizes[anchor] = count
            add(count)
        else:
            continue
        if total > MAX_NODES or (open_nodes and open_nodes[-1][1] > MAX_NODES):
            mark = event.start_mark
            raise InputError(file, f"line {mark.line + 1}, column {mark.column + 1}",
                             f"expands to more than {MAX_NODES:,} values through YAML aliases (an alias bomb?)",
                             "write the values out, or use fewer anchors and aliases (`&name` / `*name`)")


class _TagBlindLoader(yaml.SafeLoader):
    """The safe loader that reads a node under an unknown tag (`!!python/object/apply:...`, which
    llm-compressor writes into recipes) as the plain data it holds, constructing nothing."""


def _untagged(loader, suffix, node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TagBlindLoader.add_multi_constructor("", _untagged)


def _count_nodes(text: str, file: str) -> None:
    nodes = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            nodes += 1
            if nodes > MAX_NODES:
                mark = event.start_mark
                raise InputError(file, f"line {mark.line + 1}, column {mark.column + 1}",
                                 f"holds more than {MAX_NODES:,} values (YAML nodes), more than the bot reads in one file",
                                 _SIZE_FIX)


_STR, _SEQ, _MAP, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "seq", "map", "merge"))


def _construct(loader, node) -> Any:
    """What the safe loader builds from ``node``, for a tree without aliases: strings, lists and
    plain mappings built here (PyYAML's Python constructor spends most of a manifest's load on
    its per-node bookkeeping), every other tag, and merge keys, by the loader itself."""
    kind = type(node)
    if node.tag == _STR and kind is yaml.ScalarNode:
        return node.value
    if node.tag == _SEQ and kind is yaml.SequenceNode:
        return [_construct(loader, child) for child in node.value]
    if node.tag == _MAP and kind is yaml.MappingNode and not any(key.tag == _MERGE for key, _ in node.value):
        data = {}
        for key_node, value_node in node.value:
            key = _construct(loader, key_node)
            try:
                data[key] = _construct(loader, value_node)
            except TypeError as exc:  # the same refusal as the safe loader's
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                        "found unhashable key", key_node.start_mark) from exc
        return data
    return loader.construct_object(node, deep=True)


def _load(text: str, *, single: bool) -> Any:
    """``text`` as the safe loader reads it: its one document (``single``), else the list of
    every document (None for an empty one)."""
    if "*" in text:  # an alias shares one object between places: the loader's own bookkeeping keeps that
        return yaml.load(text, Loader=_Loader) if single else list(yaml.load_all(text, Loader=_Loader))
    loader = _Loader(text)
    try:
        if single:
            node = loader.get_single_node()  # refuses a second document, as yaml.load does
            return None if node is None else _construct(loader, node)
        docs = []
        while loader.check_node():
            docs.append(_construct(loader, loader.get_node()))
            loader.constructed_objects, loader.recursive_objects = {}, {}
        return docs
    finally:
        loader.dispose()


def load_one(text: str, file: str, *, unknown_tags: bool = False) -> Any:
    """One YAML document; with ``unknown_tags``, a node under a tag the safe loader does not know
    is read as plain data (never constructed)."""
    try:
        check_size(text, file)
        return yaml.load(text, Loader=_TagBlindLoader) if unknown_tags else _load(text, single=True)
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from exc


def load_all(text: str, file: str) -> list[Any]:
    """Every document of a multi-document YAML file, empty documents dropped."""
    try:
        check_size(text, file)
        return [doc for doc in _load(text, single=False) if doc is not None]
    except yaml.YAMLError as exc:
        raise _yaml_error(file, exc) from exc
