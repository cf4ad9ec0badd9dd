#!/bin/sh
# Regenerates the llama.cpp reference embeddings of tests/data/embed (see README.md).
#   usage: sh tests/data/embed/make-refs.sh
# The texts must stay in sync with EMBED_TEXTS in tests/test_embed.c.
set -eu
cd "$(dirname "$0")/../../.."
SHARED=${QFIT_SHARED:-../shared}
PEER_HOME=${PEER_HOME:-$HOME/.cache/qfit-peer}
OUT=tests/data/embed
BIN=${TMPDIR:-/tmp}/peer-embed
cc -O2 -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
   -I"$PEER_HOME/vendor/include" -I"$SHARED/peer/src" \
   $OUT/peer-embed.c "$SHARED/peer/src/peer_common.c" -o "$BIN" \
   -L"$PEER_HOME/build/lib" -lllama -lggml -lggml-base -Wl,-rpath,"$PEER_HOME/build/lib" -ldl -lm -lpthread
"$BIN" "$SHARED/models/kjv-llama-7m-f32.gguf" "$OUT/kjv-f32" \
    "In the beginning God created the heaven and the earth." \
    "Jesus wept." \
    "And God said, Let there be light: and there was light." \
    "light" \
    "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God moved upon the face of the waters. And God saw the light, that it was good: and God divided the light from the darkness." \
    --threads 2
