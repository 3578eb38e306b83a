#!/usr/bin/env bash
# System services and programs the test suite needs (the real Prometheus server and Pushgateway,
# headless Chromium for the tests that measure rendered comments). Idempotent.
set -euo pipefail
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1 \
   || ! command -v prometheus-pushgateway >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-pushgateway >/dev/null
  else
    echo "prometheus is not installed; run: sudo apt-get install prometheus prometheus-pushgateway" >&2
    exit 1
  fi
fi
# Chromium renders the comments and the demo's index for tests/test_comment_width.py.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is not installed; run: sudo apt-get install chromium" >&2
    exit 1
  fi
fi
# kustomize renders environments that hold a kustomization.yaml (bot/kustomize.py): the standalone
# binary or kubectl's built-in `kubectl kustomize`. Debian ships neither; kubectl is usually there.
if ! command -v kustomize >/dev/null 2>&1 && ! command -v kubectl >/dev/null 2>&1; then
  echo "neither kustomize nor kubectl is installed: tests/test_attacks.py::test_attack__kustomization_is_rendered" \
       "will be skipped (install kubectl or kustomize from https://kubectl.docs.kubernetes.io)" >&2
fi
