#!/bin/bash
# rwkvcpp.sh MODEL P N T R: bench/compare.py's --peer command for rwkv.cpp.
# MODEL is the GGUF file the other engines run (DIR/LABEL.gguf); rwkv.cpp runs
# its own conversion of the same checkpoint, DIR/rc-LABEL.bin
# (bench/peers/pth_to_rwkvcpp.py), through RWKVCPP_BENCH (rwkvcpp_bench.cpp).
set -euo pipefail
: "${RWKVCPP_BENCH:?set RWKVCPP_BENCH to the rwkvcpp_bench executable}"
model="$(dirname "$1")/rc-$(basename "$1" .gguf).bin"
[ -f "$model" ] || { echo "rwkvcpp.sh: no rwkv.cpp conversion $model" >&2; exit 1; }
exec "$RWKVCPP_BENCH" -m "$model" -p "$2" -n "$3" -t "$4" -r "$5"
