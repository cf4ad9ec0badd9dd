#!/bin/bash
# Regenerates tests/data/eval/peer_kld.tsv: llama.cpp's mean KLD (and PPL, same-top %)
# of quantized copies of the shared model against its F32 logits, on the same
# chunks `qfit eval` uses in tests/test_evalcmd.c (--ctx 128 --chunks 256).
#   usage: bash tests/data/eval/make_reference.sh   (needs /work/shared and the peer harness:
#          bash $QFIT_SHARED/peer/setup.sh)
set -euo pipefail
SHARED=${QFIT_SHARED:-/work/shared}
PEER=${PEER:-${PEER_HOME:-$HOME/.cache/qfit-peer}/build/bin}
M=$SHARED/models/kjv-llama-7m-f32.gguf
T=$SHARED/models/kjv-llama-7m-val.txt
CTX=128 CHUNKS=256
TYPES="Q8_0 Q4_K_M Q3_K_M"
OUT=$(cd "$(dirname "$0")" && pwd)/peer_kld.tsv
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
"$PEER/peer-ppl" "$M" "$T" --ctx $CTX --chunks $CHUNKS --threads 1 --save-logits "$TMP/base.bin" >"$TMP/base.txt" 2>&1
base_ppl=$(sed -n 's/.*Final estimate: PPL = \([0-9.]*\).*/\1/p' "$TMP/base.txt")
{
  echo "# llama.cpp (peer harness, $(basename "$PEER")/peer-ppl) --ctx $CTX --chunks $CHUNKS --threads 1 on $(basename "$M"); base PPL $base_ppl"
  printf 'type\tppl\tkld_mean\tsame_top_pct\n'
  for t in $TYPES; do
    "$PEER/peer-quantize" "$M" "$TMP/$t.gguf" "$t" 1 >/dev/null 2>&1
    "$PEER/peer-ppl" "$TMP/$t.gguf" "$T" --ctx $CTX --chunks $CHUNKS --threads 1 --kld-base "$TMP/base.bin" >"$TMP/$t.txt" 2>&1
    sum=$(grep KLD_SUMMARY "$TMP/$t.txt")
    field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$sum"; }
    printf '%s\t%s\t%s\t%s\n' "$t" "$(field ppl_q)" "$(field mean_kld)" "$(field same_top_pct)"
  done
} >"$OUT"
