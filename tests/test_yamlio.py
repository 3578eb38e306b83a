"""bot.core.yamlio: safe YAML whose work is bounded however hostile the file."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from bot.core.errors import InputError
from bot.core.yamlio import MAX_BYTES, MAX_NODES, check_size, load_all, load_one


def bomb(levels: int = 9, fan: int = 9, key: str = "x") -> str:
    """The billion-laughs shape: each level an anchored list of ``fan`` aliases of the one before."""
    lines = [f"l0: &l0 [{', '.join([key] * fan)}]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * fan)}]")
    return "\n".join(lines) + "\n"


def test_load_one__alias_bomb_is_refused_quickly():
    text = bomb()
    assert len(text) < 700  # ~600 bytes that would expand to 9**9 values
    started = time.monotonic()
    with pytest.raises(InputError) as exc:
        load_one(text, "models/canopy-tiny/v1.3-int4-g64/variant.yaml")
    assert time.monotonic() - started < 30  # expanding it would take hours: any bound a busy machine meets
    assert exc.value.file == "models/canopy-tiny/v1.3-int4-g64/variant.yaml"
    assert exc.value.field.startswith("line ")
    assert f"expands to more than {MAX_NODES:,} values through YAML aliases" in exc.value.message


def test_load_all__alias_bomb_in_a_manifest_is_refused():
    body = "\n".join("  " + line for line in bomb().splitlines())
    text = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: canopy\n  annotations:\n"
            "    promotion-bot/variant: canopy-tiny/v1.3-int4-g64\nspec:\n" + body + "\n")
    with pytest.raises(InputError, match="YAML aliases"):
        load_all(text, "environments/prod/canopy.yaml")


def test_load_one__modest_aliases_are_fine():
    data = load_one(bomb(levels=3, fan=3), "promotion.yaml")
    assert data["l2"] == [[["x"] * 3] * 3] * 3


def test_check_size__counts_expansion_exactly_at_the_limit():
    # l0 has fan+1 nodes (the list and its scalars); every level above holds fan copies plus itself.
    fan, levels = 10, 6
    sizes = [fan + 1]
    for _ in range(1, levels):
        sizes.append(1 + fan * sizes[-1])
    expanded = 1 + sum(1 + s for s in sizes)  # the top mapping, each key and its value
    assert expanded > MAX_NODES
    with pytest.raises(InputError):
        check_size(bomb(levels=levels, fan=fan), "f.yaml")
    check_size(bomb(levels=levels - 1, fan=fan), "f.yaml")  # 111,111-odd values: allowed


def test_load_one__self_referring_alias_is_refused():
    with pytest.raises(InputError, match="refers to the node that contains it"):
        load_one("a: &a [1, *a]\n", "f.yaml")


def test_load_one__oversized_file_is_refused():
    with pytest.raises(InputError, match="more than the"):
        load_one("x" * (MAX_BYTES + 1), "f.yaml")


def test_load_one__malformed_yaml_names_line_and_column():
    with pytest.raises(InputError) as exc:
        load_one("a: [1, 2\nb: 3\n", "f.yaml")
    assert exc.value.field.startswith("line ") and "malformed YAML" in exc.value.message


# Texts where the loader's fast path (strings, lists and plain maps built directly) could part from
# PyYAML's safe loader: every implicit type, explicit tags, merge keys, anchors without aliases,
# empty documents, keys that are not strings.
SAME_AS_SAFE_LOADER = [
    "a: 1\nb: 1.5\nc: true\nd: ~\ne: 2001-12-14\nf: 2001-12-14t21:59:43.10-05:00\ng: 0x1F\nh: 0o17\ni: 017\n"
    "j: 1_000\nk: .inf\nl: -.Inf\nm: .nan\nn: yes\no: Off\np: '1'\nq: \"true\"\nr: 1:20\ns: !!str 5\n",
    "list: [1, 'two', {three: 3}, [4, [5]]]\nempty: []\nnone: {}\n",
    "? [complex, key]\n: 1\n",
    "1: int key\n2.5: float key\nnull: null key\ntrue: bool key\n",
    "base: &b {x: 1}\nother: {y: 2}\n",
    "<<: {x: 1, y: 2}\ny: 3\n",
    "set: !!set {a, b}\nomap: !!omap [{a: 1}, {b: 2}]\npairs: !!pairs [{a: 1}]\nbin: !!binary aGVsbG8=\n",
    "s: !!str [not, allowed]\n",
    "---\na: 1\n---\n---\n# only a comment\n---\n[1, 2]\n...\n",
    "",
    "just a string\n",
    "dup: 1\ndup: 2\n",
    "k: |\n  literal\n  block\nf: >\n  folded\n  text\n",
    "unicode: \"\\u00e9\\U0001F600\"\nplain: café\n",
]


def _same(a, b) -> bool:
    """Equal and of the same types all the way down (1 == True == 1.0 would hide a wrong type)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(k1, k2) and _same(a[k1], b[k2]) for k1, k2 in zip(a, b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a != a and b != b)  # nan


def _reference(loader, text: str):
    try:
        return ("ok", loader(text))
    except yaml.YAMLError as exc:
        return ("error", str(exc).splitlines()[0])


@pytest.mark.parametrize("text", SAME_AS_SAFE_LOADER)
def test_load__reads_every_document_as_the_safe_loader_does(text):
    want_all = _reference(lambda t: [d for d in yaml.load_all(t, Loader=yaml.SafeLoader) if d is not None], text)
    want_one = _reference(lambda t: yaml.load(t, Loader=yaml.SafeLoader), text)
    for want, load in ((want_all, load_all), (want_one, load_one)):
        try:
            got = ("ok", load(text, "x.yaml"))
        except InputError as exc:
            got = ("error", exc.message)
        assert got[0] == want[0], (text, got, want)
        if got[0] == "ok":
            assert _same(got[1], want[1]), (text, got[1], want[1])


def test_load__reads_the_projects_own_yaml_as_the_safe_loader_does():
    root = Path(__file__).resolve().parents[1]
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "*.yaml", "*.yml"], capture_output=True, text=True)
    files = [root / name for name in listed.stdout.split()]
    assert len(files) > 20, listed.stderr
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        want = _reference(lambda t: [d for d in yaml.load_all(t, Loader=yaml.SafeLoader) if d is not None], text)
        if want[0] != "ok":
            continue  # a deliberately broken fixture; the texts above cover errors
        assert _same(load_all(text, str(path)), want[1]), path
