"""Small ways a PR's strings or files reached places they should not (#26's low findings)."""

from __future__ import annotations

import os

import pytest

from bot.cli import main
from bot.core.output import log_safe
from bot.render.markdown import code_block, fit_comment, inline_code, md_escape, open_fence


@pytest.mark.parametrize("name", ["environments/test/x\n::add-mask::secret.yaml", "a\r::stop-commands::tok",
                                  "::error::boom.yaml"])
def test_log_safe__a_file_name_cannot_issue_a_workflow_command(name):
    line = log_safe(f"error: {name}: bad")
    assert "\n" not in line and "\r" not in line
    assert not any(part.lstrip().startswith("::") for part in line.splitlines())


def test_log_safe__bidi_and_terminal_escapes_are_shown_as_codes():
    assert log_safe("a\u202eb\x1b[31mc\x00") == "a\\u202eb\\u001b[31mc\\u0000"


@pytest.mark.parametrize("render", [md_escape, lambda s: str(code_block(s)), lambda s: str(inline_code(s))])
def test_comment__nul_and_bidi_overrides_never_reach_it(render):
    out = render("prod\u202e46pni\u2066x\x00y")
    assert not any(ch in out for ch in "\u202e\u2066\x00") and "\ufffd" in out


def test_fit_comment__a_cut_inside_a_four_backtick_fence_closes_it():
    body = "<!-- promotion-bot:comment -->\nintro\n````yaml\n" + "```\nnot a close\n" * 20000
    out = fit_comment(body, "https://example.com/report")
    assert open_fence(out[: out.index("**This comment was cut")]) is None
    assert out.rstrip().endswith("[Full report](https://example.com/report)")


def test_init__never_writes_through_a_symlink(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    repo = tmp_path / "repo"
    repo.mkdir()
    os.symlink(outside, repo / "models")
    assert main(["init", "--dir", str(repo), "--model", "acme-1b"]) == 2
    assert list(outside.iterdir()) == [] and not (repo / "promotion.yaml").exists()


def test_init__keeps_edited_schemas_without_force(tmp_path):
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-1b"]) == 0
    schema = tmp_path / ".promotion-bot/schemas/promotion.schema.json"
    for rel in ("promotion.yaml", "models/acme-1b/v1.0-bf16/variant.yaml", "evals/tasks/acme_1b_heldout.yaml"):
        (tmp_path / rel).unlink()
    schema.write_text("{}")
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-1b"]) == 2
    assert schema.read_text() == "{}"
    assert main(["init", "--dir", str(tmp_path), "--model", "acme-1b", "--force"]) == 0
    assert schema.read_text() != "{}"


def test_zoo_check__a_symlinked_weights_folder_does_not_meet_zoo_require(gitops, tmp_path):
    import shutil

    from test_attacks import assert_refused, run_check

    folder = gitops.path / "models/canopy-tiny/v1.3-int4-g64/weights"
    shutil.rmtree(folder)
    os.symlink("../v1.0-fp32/weights", folder)
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("v1.3's weights are a link to the baseline's")
    code, report, comment = run_check(gitops, tmp_path)
    assert_refused(code, report, comment, "weights folder models/canopy-tiny/v1.3-int4-g64/weights is a symlink, "
                                          "not a folder of the revision")


def test_zoo_check__a_recipe_that_is_a_folder_does_not_count(gitops, tmp_path):
    from test_attacks import assert_refused, run_check

    recipe = gitops.path / "models/canopy-tiny/v1.3-int4-g64/recipe.yaml"
    recipe.unlink()
    (recipe / "x").mkdir(parents=True)
    (recipe / "x" / "y.yaml").write_text("a: 1\n")
    gitops.set_variant("test", "canopy-tiny/v1.3-int4-g64")
    gitops.commit("the recipe is a folder")
    code, report, comment = run_check(gitops, tmp_path)
    assert_refused(code, report, comment, "recipe models/canopy-tiny/v1.3-int4-g64/recipe.yaml is a folder, not a file")
