#!/bin/sh
# Regenerates llama.cpp's reference answers for the WordPiece tests (see README.md).
#   usage: sh tests/data/tokenizer/wpm/make-refs.sh
# 1. the wpm suite writes its four vocabulary-only GGUFs into a temporary folder;
# 2. peer-wpm.c, built against the peer's prebuilt llama.cpp, tokenizes cases.txt
#    with each of them and writes ids-<variant>.tsv (and pieces-default.tsv).
set -eu
cd "$(dirname "$0")/../../../.."
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/tokenizer/wpm
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   $OUT/peer-wpm.c "$SHARED/peer/src/peer_common.c" -o "$TMP/peer-wpm" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
make -j2 debug >/dev/null
# the comparisons fail while references are missing: only the GGUFs matter here
QFIT_WPM_SAVE_DIR=$TMP ./build/debug/tests/qfit-tests --filter='wpm/*' >/dev/null 2>&1 || true
for v in default cased keep-accents no-add; do
    if [ "$v" = default ]; then
        "$TMP/peer-wpm" "$TMP/wpm-$v.gguf" $OUT/cases.txt $OUT/ids-$v.tsv $OUT/pieces-default.tsv
    else
        "$TMP/peer-wpm" "$TMP/wpm-$v.gguf" $OUT/cases.txt $OUT/ids-$v.tsv
    fi
done
echo "wrote $OUT/ids-*.tsv and $OUT/pieces-default.tsv"
