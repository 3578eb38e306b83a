"""Imports point one way: down this table (a module may import its own layer and those below).

An import running back up is how cycles and hidden couplings start (a check reaching into the
CLI, the core reaching into the GitHub adapter); docs/ARCHITECTURE.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [  # top first; a module's layer is that of its longest matching prefix
    ("entry", ["bot.cli", "bot.__main__", "bot.commands"]),
    ("adapters", ["bot.github", "bot.monitor_pass", "bot.demo"]),
    ("gate", ["bot.pipeline", "bot.runner", "bot.report", "bot.plan", "bot.statuses", "bot.variant_changes",
              "bot.policy_load", "bot.recorder"]),
    ("checks", ["bot.checks", "bot.appflows", "bot.lmeval", "bot.perf", "bot.serving", "bot.context",
                "bot.monitor"]),
    ("domain", ["bot.charts", "bot.variant_refs", "bot.evidence", "bot.kustomize", "bot.sequential_policy", "bot.policy", "bot.promotions", "bot.manifests", "bot.zoo", "bot.results", "bot.card",
                "bot.records", "bot.zoo_compare",
                "bot.render", "bot.forge"]),
    ("base", ["bot.schemas", "bot.stats", "bot.errors", "bot.fields", "bot.yamlio", "bot.paths", "bot.output", "bot.digests",
              "bot.childenv", "bot.vcs", "bot.weights_safety", "bot"]),
]


def layer_of(module: str) -> int:
    best = max(((len(p), i) for i, (_, prefixes) in enumerate(LAYERS) for p in prefixes
                if module == p or (p != "bot" and module.startswith(p + "."))), default=None)
    assert best is not None, f"{module} is in no layer of tests/test_layers.py: add it"
    return best[1]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[str, int]]:
    """Every `bot.` module ``path`` imports, with the line, lazy imports inside functions included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("bot")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.startswith("bot"):
            found.append((node.module, node.lineno))
    return found


MODULES = sorted((ROOT / "bot").rglob("*.py"))


def test_layers__every_module_has_a_layer():
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layers__imports_never_point_up(path):
    module = module_name(path)
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target} ({LAYERS[layer_of(target)][0]}) from "
              f"{LAYERS[layer_of(module)][0]}"
              for target, line in imports_of(path) if layer_of(target) < layer_of(module)]
    assert not upward, "\n".join(upward)


def test_layers__the_check_finds_an_upward_import(tmp_path):
    # The rule itself can fail: a domain module importing the CLI is reported.
    fake = ROOT / "bot" / "zoo.py"
    assert layer_of("bot.cli") < layer_of(module_name(fake))
    assert ("bot.cli", 1) in imports_of(_write(tmp_path, "import bot.cli\n"))


def _write(tmp_path, text):
    p = tmp_path / "m.py"
    p.write_text(text)
    return p
