#!/usr/bin/env bash
# Builds Aviary with the given preset (default: release) and runs the whole
# test suite with CTest. Usage: scripts/test.sh [release|debug|sanitize]
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
cmake --preset "$preset"
cmake --build --preset "$preset"
ctest --preset "$preset"
