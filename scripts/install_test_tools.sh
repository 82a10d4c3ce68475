#!/usr/bin/env bash
# System tools some tests use (each such test skips with a reason when its tool is missing):
#   chromium + chromium-driver  real-browser test of the web UI
#   blender + python3-numpy     imports exported .glb files (Debian bookworm's Blender 3.4)
#   gltf-validator (npm)        the Khronos glTF validator
# Installs only what is missing; safe to run again. Needs root for apt-get.
set -euo pipefail
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium chromium-driver)
command -v blender >/dev/null 2>&1 || need_apt+=(blender python3-numpy)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "install_test_tools: cannot install ${need_apt[*]} (not root or no apt-get); those tests will skip" >&2
  fi
fi
if command -v npm >/dev/null 2>&1; then
  [ -d "$(npm root -g)/gltf-validator" ] || npm install -g --silent gltf-validator >/dev/null 2>&1 \
    || echo "install_test_tools: npm could not install gltf-validator; the validator test will skip" >&2
fi
