#!/bin/sh
# Regenerates llama.cpp's reference embeddings of tests/data/encoder (see README.md).
#   usage: sh tests/data/encoder/make-refs.sh MODELS_DIR
# MODELS_DIR holds tiny-bert-f32.gguf and tiny-nomic-bert-f32.gguf as the encoder suite
# writes them (QFIT_ENCODER_SAVE_DIR=MODELS_DIR make test TESTS_FILTER='encoder/*').
set -eu
cd "$(dirname "$0")/../../.."
M=$1
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/encoder
BIN=$M/peer-embd
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   $OUT/peer-embd.c "$SHARED/peer/src/peer_common.c" -o "$BIN" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
# prompt k of length len: [CLS] 101, ids 104 + (97 j + 131 k + 11) mod 408, [SEP] 102
prompt() {
    awk -v k="$1" -v n="$2" 'BEGIN { s = "101"; for (j = 1; j < n - 1; j++) s = s " " (104 + (97 * j + 131 * k + 11) % 408); print s " 102" }'
}
for shape in tiny-bert tiny-nomic-bert; do
    m=$M/$shape-f32.gguf
    "$BIN" "$m" $OUT/$shape.p0 --ids "$(prompt 0 6)" --threads 2
    "$BIN" "$m" $OUT/$shape.p1 --ids "$(prompt 1 17)" --threads 2
    "$BIN" "$m" $OUT/$shape.p2 --ids "$(prompt 2 41)" --threads 2
    "$BIN" "$m" $OUT/$shape.batch --ids "$(prompt 0 6)" --ids "$(prompt 1 17)" --ids "$(prompt 2 41)" --threads 2
    # the texts of tests/test_encoder.c (TEXTS), tokenized by llama.cpp
    "$BIN" "$m" $OUT/$shape.text --text "hello world" --text "The quick brown fox jumped over the lazy dog." \
        --text "search query: what is a document?" --text "Text 123, tested!" --threads 2
done
