#!/usr/bin/env bash
# System tools some tests use (each such test skips with a reason when its tool is missing).
# Installs only what is missing; safe to run again.
set -euo pipefail
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  else
    echo "install_test_tools: cannot install ${need_apt[*]} (not root or no apt-get); those tests will skip" >&2
  fi
fi
