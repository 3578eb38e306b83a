#!/usr/bin/env bash
# System services the test suite needs (the real Prometheus server and Pushgateway). Idempotent.
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
