#!/usr/bin/env bash
# Builds Aviary for 64-bit Arm on an x86-64 Debian and runs its kernel and
# library tests under qemu-user: the check that the code builds and runs on
# Arm (Highway's NEON target; the x86-only VNNI kernels drop out), for machines
# without an Arm CPU. Not part of CI: on 2 cores the build takes ~4 minutes and
# the tests run slowly under emulation (util/io/text/ops ~4 minutes, test_model
# ~12 more).
#
# Usage: scripts/check-arm64.sh [--model]
#   --model  also run test_model (every model path against ../shared/refdata)
# Installs, when missing: the arm64 architecture in dpkg, g++-aarch64-linux-gnu,
# qemu-user and the arm64 -dev packages of scripts/setup.sh's libraries.
set -euo pipefail
cd "$(dirname "$0")/.."

with_model=0
for arg in "$@"; do
  case "$arg" in
    --model) with_model=1 ;;
    *) echo "check-arm64: unknown argument '$arg' (expected --model)" >&2; exit 2 ;;
  esac
done

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  # install-missing.sh updates the package lists before it installs.
  if [ "$(id -u)" -eq 0 ]; then dpkg --add-architecture arm64; else sudo dpkg --add-architecture arm64; fi
fi
scripts/install-missing.sh check-arm64 g++-aarch64-linux-gnu qemu-user \
  zlib1g-dev:arm64 libhwy-dev:arm64 libgtest-dev:arm64 libgmock-dev:arm64 libbenchmark-dev:arm64 \
  libreadline-dev:arm64 libcpp-httplib-dev:arm64 libhiredis-dev:arm64 libssl-dev:arm64

cmake --preset arm64
cmake --build --preset arm64

# -L /: the multiarch loader with its own libc (see cmake/aarch64-linux-gnu.cmake).
export AVIARY_SHARED="${AVIARY_SHARED:-$(cd .. && pwd)/shared}"
run() { echo "=== $1 (qemu-aarch64)"; qemu-aarch64 -L / "build/arm64/tests/$1" "${@:2}"; }
run test_util
run test_io
run test_text
# ForcesTheVariant re-executes the test binary with AVIARY_SIMD set; under
# qemu-user that exec needs binfmt_misc, which containers seldom have.
run test_ops --gtest_filter=-SimdEnvironment.ForcesTheVariant
if [ "$with_model" -eq 1 ]; then run test_model; fi
echo "check-arm64: all passed"
