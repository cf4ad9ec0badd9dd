#!/bin/sh
# Regenerates the MXFP4 reference files of tests/data/mxfp4 with llama.cpp's ggml
# (the peer's prebuilt libraries; rebuild them with `bash $QFIT_SHARED/peer/setup.sh`).
#   usage: sh tests/data/mxfp4/make-refs.sh [BUILD_DIR]      (BUILD_DIR default: build/mxfp4-refs)
set -eu
cd "$(dirname "$0")/../../.."
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
LIB=$PEER_HOME/build/lib
OUT=tests/data/mxfp4
B=${1:-build/mxfp4-refs}
mkdir -p "$B"
# -ffp-contract=off: the inputs (mxfp4_cases.h) must be the bits the test computes
cc -O2 -std=gnu11 -ffp-contract=off -Wall -Wextra -I"$PEER_HOME/vendor/include" -I"$OUT" \
   "$OUT/gen-refs.c" -o "$B/gen-refs" \
   -L"$LIB" -lggml-base -Wl,-rpath,"$(cd "$LIB" && pwd)" -ldl -lm
# x64: the baseline variant, whose dot is ggml's generic C; haswell: the AVX2 dot
"$B/gen-refs" "$(cd "$LIB" && pwd)/libggml-cpu-x64.so" "$(cd "$LIB" && pwd)/libggml-cpu-haswell.so" "$OUT"
cat "$OUT/refs.txt"
