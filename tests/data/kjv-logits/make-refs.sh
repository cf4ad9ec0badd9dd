#!/bin/sh
# Regenerates the same-machine llama.cpp logits of tests/data/kjv-logits (see README.md).
#   usage: sh tests/data/kjv-logits/make-refs.sh [WORK_DIR]
# Needs the peer harness (bash ../shared/peer/setup.sh) and ../shared (QFIT_SHARED).
set -eu
cd "$(dirname "$0")/../../.."
W=${1:-/tmp/kjv-logits-refs}
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/kjv-logits
mkdir -p "$W"
BIN=$W/peer-ids-logits
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   tests/data/engine/peer-ids-logits.c "$SHARED/peer/src/peer_common.c" -o "$BIN" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
F32=$SHARED/models/kjv-llama-7m-f32.gguf
for v in Q8_0 Q6_K Q4_K_M; do
    "$PEER_HOME/build/bin/peer-quantize" "$F32" "$W/$v.gguf" "$v" 2 >/dev/null
done
for v in f32 Q8_0 Q6_K Q4_K_M; do
    model=$W/$v.gguf
    [ "$v" = f32 ] && model=$F32
    for k in 0 1 2 3 4; do
        # the prompt ids as llama.cpp tokenized them (BOS + prompt k of logits/prompts.txt)
        ids=$(sed -n 's/^prompt tokens ([0-9]*): //p' "$SHARED/testdata/kjv-llama-7m/logits/f32.p$k.txt")
        "$BIN" "$model" "$OUT/$v.p$k" "$ids" --gen 32 --threads 2
    done
done
