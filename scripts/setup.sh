#!/usr/bin/env bash
# Installs what building and testing Aviary needs, from Debian's packages.
# Safe to run again: it installs only what is missing.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev zlib1g-dev libhwy-dev libreadline-dev
  tmux
  libcpp-httplib-dev libhiredis-dev libssl-dev redis-server
  python3
)
# The server tests drive `aviary serve` with the official `openai` npm client;
# Node.js is usually there already (from NodeSource), otherwise Debian's.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || packages+=(nodejs npm)

"$(dirname "$0")/install-missing.sh" setup "${packages[@]}"
