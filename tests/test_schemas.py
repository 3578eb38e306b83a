"""The shipped JSON Schemas agree with the bot's parsers, key for key, and the docs with both.

The parsers are the enforcement; the schemas are what editors and docs/reference.md show. Every
mapping a parser reads rejects unknown keys through `bot.core.fields.reject_unknown`: recording each
call while the parsers read the example files gives the keys the parser accepts at each place,
compared with the schema's keys at the same place. Every closed mapping of a schema must be met
by the examples, so neither side can grow a key the other lacks.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

import bot.core.fields
from bot import schemas
from bot.checks import load_policy
from bot.policy.model import CHECK_ENTRY_KEYS
from bot.zoo.serving import parse_serve
from bot.zoo.variants import VariantRef, parse_variant

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = Path(__file__).parent / "schema_examples"
POLICY_EXAMPLES = sorted(EXAMPLES.glob("promotion-*.yaml"))
VARIANT_EXAMPLES = sorted(EXAMPLES.glob("variant-*.yaml"))
_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]|\[([^\]]+)\]")  # key, [index], [key with dots]


def recorded_calls(monkeypatch, parse, file: str) -> list[tuple[str, set[str]]]:
    """``(field path, accepted keys)`` of every unknown-key check ``parse()`` makes in ``file``
    (not in the built-in rollback rules it also reads)."""
    calls: list[tuple[str, set[str]]] = []
    original = bot.core.fields.reject_unknown

    def recorder(data, allowed, loc):
        if loc.file == file:
            calls.append((loc.path, set(allowed)))
        return original(data, allowed, loc)

    for name, module in list(sys.modules.items()):
        if (name == "bot" or name.startswith("bot.")) and getattr(module, "reject_unknown", None) is original:
            monkeypatch.setattr(module, "reject_unknown", recorder)
    parse()
    monkeypatch.undo()
    return calls


def tokens(path: str) -> list[str | int]:
    return [int(i) if i else key or quoted for key, i, quoted in _TOKEN.findall(path)]


def schema_keys_at(root: dict, doc, path: str, met: set[int]) -> tuple[set[str], bool]:
    """The keys the schema allows at ``path`` of ``doc`` (and whether it is a gate entry); marks
    the closed mappings it passes through in ``met``."""
    node, value = root, doc
    for tok in tokens(path):
        node = schemas.resolve(node, root)
        if isinstance(tok, int):
            node, value = node["items"], value[tok]
            continue
        node = next_node(node, value, tok, root)
        value = (value.get(tok) if isinstance(value, dict) else None) or {}  # parsers check absent mappings too
    node = schemas.resolve(node, root)
    branches = schemas.check_branches(node)
    if branches:
        then = branches[value["check"]]
        met.add(id(then))
        return set(then["properties"]), True
    keys: set[str] = set()
    for branch in schemas.object_branches(node, root):
        met.add(id(branch))
        keys |= set(branch.get("properties", {}))
    return keys, False


def next_node(node: dict, value, tok: str, root: dict) -> dict:
    branches = schemas.check_branches(node)
    if branches:
        return branches[value["check"]]["properties"][tok]
    for branch in schemas.object_branches(node, root):
        if tok in branch.get("properties", {}):
            return branch["properties"][tok]
        if isinstance(branch.get("additionalProperties"), dict):
            return branch["additionalProperties"]
    raise AssertionError(f"the schema has no {tok!r} under {node.get('description', node)}")


def closed_mappings(node, root: dict, found: dict[int, str], where: str = "") -> None:
    """Every mapping of the schema that refuses other keys, by id, with where it is."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            found[id(node)] = where
        for key, child in node.items():
            closed_mappings(child, root, found, f"{where}/{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            closed_mappings(child, root, found, f"{where}/{i}")


def agree(calls, root: dict, doc, file: str, met: set[int]) -> None:
    for path, accepted in calls:
        keys, gate_entry = schema_keys_at(root, doc, path, met)
        if gate_entry:  # the entry's own keys go to the policy, the rest to the check's parser
            assert CHECK_ENTRY_KEYS <= keys, (file, path, CHECK_ENTRY_KEYS - keys)
            keys -= CHECK_ENTRY_KEYS
        assert accepted == keys, f"{file}: {path}: parser only {sorted(accepted - keys)}, schema only {sorted(keys - accepted)}"


def test_schemas__are_valid_draft7_schemas():
    for name in schemas.NAMES:
        jsonschema.Draft7Validator.check_schema(schemas.load(name))


@pytest.mark.parametrize("name, examples", [("promotion", POLICY_EXAMPLES), ("variant", VARIANT_EXAMPLES)])
def test_schemas__examples_are_valid_for_schema_and_parser(name, examples):
    validator = jsonschema.Draft7Validator(schemas.load(name))
    for file in examples:
        text = file.read_text()
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(yaml.safe_load(text))]
        assert not errors, (file.name, errors)
        if name == "promotion":
            load_policy.parse(text, file.name)
        else:
            parse_variant(VariantRef("acme-1b", "v2.4-int4-g32"), text)


def assert_schema_and_parser_agree(schema: str, examples, parser_calls) -> None:
    """Every example's mappings take the same keys in the parser (``parser_calls(file, text)``) as in
    the schema, and the examples reach every closed mapping of the schema."""
    root = schemas.load(schema)
    closed: dict[int, str] = {}
    closed_mappings(root, root, closed)
    met: set[int] = set()
    for file in examples:
        text = file.read_text()
        agree(parser_calls(file, text), root, yaml.safe_load(text), file.name, met)
    unmet = sorted(where for key, where in closed.items() if key not in met)
    assert not unmet, f"no example reaches these mappings of the schema: {unmet}"


def test_schemas__policy_parser_and_schema_accept_the_same_keys(monkeypatch):
    def parser_calls(file, text):
        calls = recorded_calls(monkeypatch, lambda: load_policy.parse(text, file.name), file.name)
        policy = load_policy.parse(text, file.name)
        # `serve:` mappings are parsed when a server starts, each named `serve` by its parser.
        calls += recorded_calls(monkeypatch, lambda: parse_serve(policy.serve, file.name), file.name)
        for env in policy.environments:
            if env.probes is not None and env.probes.serve is not None:
                calls += [(f"environments[{env.index}].probes.{p}", keys)
                          for p, keys in recorded_calls(monkeypatch, lambda: parse_serve(env.probes.serve, file.name),
                                                        file.name)]
        return calls

    assert_schema_and_parser_agree("promotion", POLICY_EXAMPLES, parser_calls)


def test_schemas__variant_parser_and_schema_accept_the_same_keys(monkeypatch):
    ref = VariantRef("acme-1b", "v2.4-int4-g32")
    assert_schema_and_parser_agree("variant", VARIANT_EXAMPLES, lambda file, text: recorded_calls(
        monkeypatch, lambda: parse_variant(ref, text), f"{ref.folder}/variant.yaml"))


def test_schemas__reference_doc_is_rendered_from_the_schemas():
    assert (ROOT / "docs" / "reference.md").read_text() == schemas.reference_markdown(), \
        "regenerate: python -m bot.schemas > docs/reference.md"


def _yaml_blocks():
    for md in [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]:
        if md.name == "reference.md":
            continue
        for m in re.finditer(r"```ya?ml\n(.*?)```", md.read_text(), re.S):
            try:
                yield md.name, yaml.safe_load(m.group(1))
            except yaml.YAMLError:
                continue  # a block with `...` elisions or template markup


def _unknown_keys(validator, doc) -> list[str]:
    """Keys the schema does not know anywhere in ``doc`` (missing required keys are fine in a fragment)."""
    def walk(errors):
        for e in errors:
            if e.validator == "additionalProperties":
                yield f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            yield from walk(e.context or [])
    return list(walk(validator.iter_errors(doc)))


def test_schemas__every_field_documented_in_docs_is_in_the_schema():
    policy = schemas.load("promotion")
    variant = schemas.load("variant")
    top, env_keys = set(policy["properties"]), set(policy["properties"]["environments"]["items"]["properties"])
    check_schema = {**policy["definitions"]["check"], "definitions": policy["definitions"]}
    env_schema = {**policy["properties"]["environments"]["items"], "definitions": policy["definitions"]}
    checked = {"policy": 0, "environment": 0, "check": 0, "variant": 0}
    problems = []
    for file, doc in _yaml_blocks():
        if isinstance(doc, dict) and set(doc) <= top:
            kind, schema, docs = "policy", policy, [doc]
        elif isinstance(doc, dict) and set(doc) <= env_keys:
            kind, schema, docs = "environment", env_schema, [doc]
        elif isinstance(doc, list) and doc and all(isinstance(d, dict) and "check" in d for d in doc):
            kind, schema, docs = "check", check_schema, doc
        elif isinstance(doc, dict) and "base_model" in doc and set(doc) <= set(variant["properties"]):
            kind, schema, docs = "variant", variant, [doc]
        else:
            continue
        checked[kind] += 1
        validator = jsonschema.Draft7Validator(schema)
        problems += [f"{file}: {p}" for d in docs for p in _unknown_keys(validator, d)]
    assert not problems, problems
    assert checked["policy"] >= 5 and checked["check"] >= 2 and checked["variant"] >= 1, checked
