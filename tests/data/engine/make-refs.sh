#!/bin/sh
# Regenerates the llama.cpp reference logits of tests/data/engine (see README.md).
#   usage: sh tests/data/engine/make-refs.sh MODELS_DIR
# MODELS_DIR holds tiny-{qwen2,qwen3,llama3,qwen3moe,mixtral,phi3,gemma2,gemma3,gpt-oss}-f32.gguf as the engine suite writes them
# (QFIT_ENGINE_SAVE_DIR=MODELS_DIR make test TESTS_FILTER='engine/*_vs_llama_cpp').
set -eu
cd "$(dirname "$0")/../../.."
M=$1
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/engine
BIN=$M/peer-ids-logits
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   $OUT/peer-ids-logits.c "$SHARED/peer/src/peer_common.c" -o "$BIN" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
# prompt k: BOS (1), then ids 3 + (97 j + 131 k + 11) mod 509 for j = 1 .. len-1
prompt() {
    awk -v k="$1" -v n="$2" 'BEGIN { s = "1"; for (j = 1; j < n; j++) s = s " " (3 + (97 * j + 131 * k + 11) % 509); print s }'
}
# the MXFP4_MOE file is qfit's (the engine suite saves it too)
for shape in ${MXFP4_SHAPES:-tiny-qwen3moe tiny-gpt-oss}; do
    k=0
    for len in 6 17 41; do
        "$BIN" "$M/$shape-mxfp4_moe.gguf" "$OUT/$shape.mxfp4_moe.p$k" "$(prompt $k $len)" --gen 16 --threads 2
        k=$((k + 1))
    done
done
for shape in ${SHAPES:-tiny-qwen2 tiny-qwen3 tiny-llama3 tiny-qwen3moe tiny-mixtral tiny-phi3 tiny-gemma2 tiny-gemma3 tiny-gpt-oss tiny-phi3-longrope tiny-phi3-longrope-s}; do
    "$PEER_HOME/build/bin/peer-quantize" "$M/$shape-f32.gguf" "$M/$shape-q8_0.gguf" Q8_0 2 >/dev/null
    for v in f32 q8_0; do
        k=0
        for len in 6 17 41; do
            "$BIN" "$M/$shape-$v.gguf" "$OUT/$shape.$v.p$k" "$(prompt $k $len)" --gen 16 --threads 2
            k=$((k + 1))
        done
    done
done
