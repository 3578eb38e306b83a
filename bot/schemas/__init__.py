"""JSON Schemas of `promotion.yaml` and `variant.yaml`, shipped for editors (the YAML language
server completes and checks a file carrying `# yaml-language-server: $schema=...`) and rendered
into docs/reference.md. The bot's own parsers stay the enforcement (errors with file, field, fix
and did-you-mean); tests/test_schemas.py keeps the two in agreement, key for key.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

NAMES = ("promotion", "variant")
FILES = {"promotion": "promotion.yaml", "variant": "models/<model>/<variant>/variant.yaml"}


def path(name: str) -> Path:
    return Path(str(resources.files(__name__) / f"{name}.schema.json"))


@functools.lru_cache(maxsize=None)
def load(name: str) -> dict:
    return json.loads(path(name).read_text())


def resolve(node: dict, root: dict) -> dict:
    """``node`` with a local ``$ref`` followed."""
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def object_branches(node: dict, root: dict) -> Iterator[dict]:
    """The object schemas ``node`` may be: itself, or its object-typed `anyOf` branches."""
    node = resolve(node, root)
    if "properties" in node or node.get("type") == "object":
        yield node
    for branch in node.get("anyOf", ()):
        branch = resolve(branch, root)
        if "properties" in branch or branch.get("type") == "object":
            yield branch


def check_branches(node: dict) -> dict[str, dict]:
    """A gate entry's schema per check name (its `allOf` of `if check == name then ...`)."""
    return {b["if"]["properties"]["check"]["const"]: b["then"] for b in node.get("allOf", ()) if "if" in b}


# --- docs/reference.md -------------------------------------------------------------------------

def _type(node: dict, root: dict) -> str:
    node = resolve(node, root)
    if "enum" in node and "type" not in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    if "const" in node:
        return f"`{node['const']}`"
    if "anyOf" in node:
        kinds = [_type(b, root) for b in node["anyOf"]]
        if any("duration" in k for k in kinds) or (kinds and "pattern" in node["anyOf"][-1] and
                                                   "ms|s|m|h" in node["anyOf"][-1]["pattern"]):
            return "duration (`90s`, `15m`, `2h`)"
        return " or ".join(dict.fromkeys(kinds))
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "string" and "%" in node.get("pattern", ""):
        return "percentage (`3%`)"
    if kind == "array" and "items" in node:
        return f"list of {_type(node['items'], root)}"
    if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        return "mapping"
    return kind


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return "`" + (json.dumps(value) if not isinstance(value, str) else value) + "`"


def _table(props: dict, required: list, root: dict) -> list[str]:
    lines = ["| Field | Type | Default | Description |", "|---|---|---|---|"]
    for key, node in props.items():
        node_r = resolve(node, root)
        desc = (node.get("description") or node_r.get("description", "")).replace("|", "\\|")
        req = " **Required.**" if key in required else ""
        examples = node.get("examples") or node_r.get("examples")
        ex = f" Example: {_cell(examples[0])}." if examples and not isinstance(examples[0], (dict, list)) else ""
        lines.append(f"| `{key}` | {_type(node, root)} | {_cell(node.get('default', node_r.get('default')))} | "
                     f"{desc}{req}{ex} |")
    return lines


def _yaml_examples(key: str, node: dict) -> list[str]:
    import yaml

    out = []
    for example in node.get("examples", ()):
        if isinstance(example, (dict, list)):
            out += ["```yaml", yaml.safe_dump({key: example}, sort_keys=False).rstrip(), "```"]
    return out


def _sections(title: str, node: dict, root: dict, depth: int, key: str, skip: frozenset = frozenset()) -> list[str]:
    out: list[str] = []
    for branch in object_branches(node, root):
        props = {k: v for k, v in branch.get("properties", {}).items() if k not in skip}
        if props:
            alternatives = len(list(object_branches(node, root))) > 1
            which = f" (with `{next(iter(branch.get('required', props)))}`)" if alternatives else ""
            out += [f"{'#' * depth} `{title}`{which}", ""]
            if branch.get("description") or node.get("description"):
                out += [branch.get("description") or node.get("description"), ""]
            out += _table(props, branch.get("required", []), root) + [""]
            examples = _yaml_examples(key, node)
            out += examples + ([""] if examples else [])
        for child_key, child in props.items():
            out += _children(_join(title, child_key), child, root, depth, child_key)
        extra = branch.get("additionalProperties")
        if isinstance(extra, dict):
            out += _children(_join(title, "<name>"), extra, root, depth, "<name>")
    return out


def _join(title: str, key: str) -> str:
    return key if title.endswith(".yaml") else f"{title}.{key}"


def _children(title: str, node: dict, root: dict, depth: int, key: str) -> list[str]:
    node = resolve(node, root)
    if node.get("type") == "array" and isinstance(node.get("items"), dict):
        items = resolve(node["items"], root)
        if check_branches(items):
            return _gate(f"{title}[]", items, root, depth)
        return _sections(f"{title}[]", items, root, depth, key)
    return _sections(title, node, root, depth, key)


def _gate(title: str, node: dict, root: dict, depth: int) -> list[str]:
    branches = check_branches(node)
    common = set.intersection(*(set(b["properties"]) for b in branches.values()))
    first = next(iter(branches.values()))
    out = [f"{'#' * depth} `{title}`: every check", "", node.get("description", ""), ""]
    out += _table({k: v for k, v in first["properties"].items() if k in common}, ["check"], root) + [""]
    for name, branch in branches.items():
        own = {k: v for k, v in branch["properties"].items() if k not in common}
        out += [f"{'#' * depth} `check: {name}`", "", branch.get("description", ""), ""]
        if own:
            out += _table(own, branch.get("required", []), root) + [""]
            for child_key, child in own.items():
                out += _children(f"{name}.{child_key}", child, root, depth + 1, child_key)
        else:
            out += ["No settings of its own.", ""]
    return out


def reference_markdown() -> str:
    """docs/reference.md, rendered from the schemas (tests/test_schemas.py keeps the file current)."""
    out = ["# Reference: promotion.yaml and variant.yaml", "",
           "Generated from the JSON Schemas shipped in `bot/schemas/` (regenerate with "
           "`python -m bot.schemas > docs/reference.md`). Editors that use the YAML language server "
           "complete and check a file that starts with a modeline; `promotion-bot init` writes both schemas to "
           "`.promotion-bot/schemas/` and the modelines into the files it creates:", "",
           "```yaml", "# yaml-language-server: $schema=.promotion-bot/schemas/promotion.schema.json", "```", "",
           "The bot's own parsers enforce the same rules, with errors that name the file, the field and the fix "
           "(and a did-you-mean for a mistyped key); `promotion-bot validate` runs them on a whole repository.", ""]
    for name in NAMES:
        schema = load(name)
        out += [f"## {FILES[name]}", "", schema["description"], ""]
        out += _sections(schema["title"], schema, schema, 3, schema["title"])
    return "\n".join(line for line in out).rstrip() + "\n"
