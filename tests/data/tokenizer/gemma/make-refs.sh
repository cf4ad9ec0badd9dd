#!/bin/sh
# Regenerates the Gemma-vocabulary references (see README.md).
#   usage: sh tests/data/tokenizer/gemma/make-refs.sh
# 1. make_gemma.py writes vocab.tsv and cases.txt;
# 2. the tokenizer suite writes the vocabulary-only GGUF (QFIT_GEMMA_SAVE_DIR);
# 3. ../wpm/peer-wpm.c, built against the peer's prebuilt llama.cpp, writes llama.cpp's
#    answers: ids.tsv (every case) and pieces.tsv (every token).
set -eu
cd "$(dirname "$0")/../../../.."
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/tokenizer/gemma
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   tests/data/tokenizer/wpm/peer-wpm.c "$SHARED/peer/src/peer_common.c" -o "$TMP/peer-wpm" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
python3 $OUT/make_gemma.py $OUT
make -j2 debug >/dev/null
# the comparisons fail while references are missing: only the GGUF matters here
QFIT_GEMMA_SAVE_DIR=$TMP ./build/debug/tests/qfit-tests --filter='tokenizer/gemma_llama_cpp_cases' >/dev/null 2>&1 || true
"$TMP/peer-wpm" "$TMP/gemma-vocab.gguf" $OUT/cases.txt $OUT/ids.tsv $OUT/pieces.tsv
echo "wrote $OUT/vocab.tsv, cases.txt, ids.tsv and pieces.tsv"
