#!/bin/sh
# Regenerates the o200k pre-tokenizer references (see README.md).
#   usage: sh tests/data/tokenizer/o200k/make-refs.sh
# 1. make_cases.py writes cases.txt and the training text; make_bpe.py trains merges.txt;
# 2. make_bpe.py writes one vocabulary-only GGUF per pre-tokenizer name;
# 3. ../wpm/peer-wpm.c, built against the peer's prebuilt llama.cpp, writes llama.cpp's
#    answers for every case into ids-<pre>.tsv, and every token's piece into pieces-gpt-4o.tsv.
set -eu
cd "$(dirname "$0")/../../../.."
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/tokenizer/o200k
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   tests/data/tokenizer/wpm/peer-wpm.c "$SHARED/peer/src/peer_common.c" -o "$TMP/peer-wpm" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
python3 $OUT/make_cases.py $OUT "$TMP/train.txt"
python3 tests/data/tokenizer/make_bpe.py merges "$TMP/train.txt" 700 > $OUT/merges.txt
# gpt-oss's harmony tokens, control tokens as in its GGUFs, and two normal tokens no merge
# reaches (they show whether merges are ignored); the test vocabulary adds the same
EXTRA='<|start|>:3 <|end|>:3 <|message|>:3 <|channel|>:3 <|constrain|>:3 <|return|>:3 <|call|>:3 qqq:1 ĠQQQ:1'
for pre in gpt-4o llama4; do
    python3 tests/data/tokenizer/make_bpe.py gguf $OUT/merges.txt $pre "$TMP/$pre.gguf" $EXTRA
done
"$TMP/peer-wpm" "$TMP/gpt-4o.gguf" $OUT/cases.txt $OUT/ids-gpt-4o.tsv $OUT/pieces-gpt-4o.tsv
"$TMP/peer-wpm" "$TMP/llama4.gguf" $OUT/cases.txt $OUT/ids-llama4.tsv
echo "wrote $OUT/cases.txt, merges.txt, ids-*.tsv and pieces-gpt-4o.tsv"
