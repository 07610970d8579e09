#!/usr/bin/env bash
# Builds Aviary with the given preset (default: release) and runs the whole
# test suite with CTest. Usage: scripts/test.sh [release|debug|sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
# The server's acceptance tests drive it with the official openai npm client,
# pinned by tests/server/js/package-lock.json.
if [ ! -d tests/server/js/node_modules/openai ] || [ tests/server/js/package-lock.json -nt tests/server/js/node_modules ]; then
  (cd tests/server/js && npm ci --no-audit --no-fund)
fi
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset"
