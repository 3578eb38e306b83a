"""Imports point one way: down this table (a module may import its own layer and those below).

An import running back up is how cycles and hidden couplings start (a check reaching into the
CLI, the core reaching into the GitHub adapter); docs/ARCHITECTURE.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = [  # top first; a module's layer is that of its package (or of the top-level module itself)
    ("entry", ["cli", "__main__", "commands"]),
    ("adapters", ["github", "demo"]),
    ("runs", ["gate", "monitor"]),
    ("checks", ["checks"]),
    ("domain", ["gitops", "render"]),
    ("policy", ["policy"]),
    ("engines", ["lmeval", "appflows", "perf"]),
    ("zoo", ["zoo"]),
    ("verdicts", ["verdicts"]),
    ("base", ["core", "stats", "schemas", "vcs", "forge", ""]),
]


def layer_of(module: str) -> int:
    """The layer of ``bot.<package>...``; ``bot`` itself (its version) is the base."""
    parts = module.split(".")
    assert parts[0] == "bot", module
    package = parts[1] if len(parts) > 1 else ""
    found = [i for i, (_, packages) in enumerate(LAYERS) if package in packages]
    assert found, f"bot.{package} is a package in no layer of tests/test_layers.py: add it to the table"
    return found[0]


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


def upward_imports(path: Path, module: str) -> list[str]:
    return [f"{path.name}:{line} imports {target} ({LAYERS[layer_of(target)][0]}) from {LAYERS[layer_of(module)][0]}"
            for target, line in imports_of(path) if layer_of(target) < layer_of(module)]


def test_layers__every_module_has_a_layer():
    for path in MODULES:
        layer_of(module_name(path))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_layers__imports_never_point_up(path):
    upward = upward_imports(path, module_name(path))
    assert not upward, "\n".join(upward)


def test_layers__the_check_finds_an_upward_import(tmp_path):
    # The rule itself can fail: a zoo module importing the CLI, or a check importing the gate, is reported.
    assert upward_imports(_write(tmp_path, "import bot.cli\n"), "bot.zoo.variants") == [
        "m.py:1 imports bot.cli (entry) from zoo"]
    assert upward_imports(_write(tmp_path, "def f():\n    from bot.gate.plan import Plan\n"), "bot.checks.x") == [
        "m.py:2 imports bot.gate.plan (runs) from checks"]
    assert upward_imports(_write(tmp_path, "from bot.core.errors import InputError\n"), "bot.checks.x") == []


def test_layers__a_package_outside_the_table_is_refused():
    with pytest.raises(AssertionError, match="bot.newthing is a package in no layer"):
        layer_of("bot.newthing.module")


def test_layers__bot_reads_as_its_packages():
    # `ls bot/` is the architecture: packages by concern, few top-level modules beside them.
    modules = sorted(p.name for p in (ROOT / "bot").glob("*.py"))
    assert len(modules) <= 8, modules
    packages = {p.name for p in (ROOT / "bot").iterdir() if (p / "__init__.py").exists()}
    in_table = {name for _, names in LAYERS for name in names} - {m[:-3] for m in modules} - {""}
    assert packages == in_table, "every package has a layer, every layer names packages that exist"


def _write(tmp_path, text):
    p = tmp_path / "m.py"
    p.write_text(text)
    return p
