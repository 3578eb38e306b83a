"""What child processes that run PR-controlled things inherit, and what their output may do in the log."""

from __future__ import annotations

import io
import subprocess
import sys

from bot.core.childenv import PASS_ENV, child_env, neutralise, relay

SECRETS = {"GITHUB_TOKEN": "ghs_x", "INPUT_GITHUB-TOKEN": "ghs_input", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "oidc",
           "HF_TOKEN": "hf_x", "AWS_SECRET_ACCESS_KEY": "aws", "OPENAI_API_KEY": "sk-x", "MY_DEPLOY_KEY": "k",
           "PYTHON_API_KEY": "sk-y"}


def child_sees(env: dict[str, str]) -> set[str]:
    out = subprocess.run([sys.executable, "-c", "import os; print('\\n'.join(sorted(os.environ)))"], env=env,
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_child_env__a_real_child_sees_no_credential_by_allow_list():
    parent = {**SECRETS, "PATH": "/usr/bin:/bin", "HOME": "/root", "HF_HUB_OFFLINE": "1", "LC_ALL": "C.UTF-8",
              "GITHUB_REPOSITORY": "acme/gitops", "SOMETHING_ELSE": "x"}
    seen = child_sees(child_env(parent))
    assert not seen & set(SECRETS)
    assert {"PATH", "HOME", "HF_HUB_OFFLINE", "LC_ALL"} <= seen
    # Not on the list, so not passed, though harmless: an allow-list passes only what is named.
    assert "GITHUB_REPOSITORY" not in seen and "SOMETHING_ELSE" not in seen


def test_child_env__operator_can_pass_named_variables_but_never_a_credential():
    parent = {"PATH": "/usr/bin:/bin", "VLLM_ATTENTION_BACKEND": "FLASH", "HF_TOKEN": "hf_x",
              PASS_ENV: "VLLM_ATTENTION_BACKEND, HF_TOKEN"}
    seen = child_sees(child_env(parent))
    assert "VLLM_ATTENTION_BACKEND" in seen
    assert "HF_TOKEN" not in seen


def test_neutralise__workflow_commands_at_a_line_start_are_inert():
    text = "ok\n::add-mask::secret\n  ::stop-commands::tok\nnot :: a command\n::error file=x::forged\n"
    out = neutralise(text)
    assert not any(line.lstrip().startswith("::") for line in out.splitlines())
    assert "not :: a command" in out and "secret" in out  # the text stays readable


def test_relay__a_child_printing_workflow_commands_reaches_the_log_defused():
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stderr.write('::add-mask::x\\n::notice::hi\\nplain\\n')"],
                            stderr=subprocess.PIPE)
    log = io.StringIO()
    thread = relay(proc.stderr, log)
    proc.wait()
    thread.join(timeout=5)
    lines = log.getvalue().splitlines()
    assert lines == [": :add-mask::x", ": :notice::hi", "plain"]
