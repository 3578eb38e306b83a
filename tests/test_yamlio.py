"""bot.core.yamlio: safe YAML whose work is bounded however hostile the file."""

from __future__ import annotations

import time

import pytest

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
    assert time.monotonic() - started < 2
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
