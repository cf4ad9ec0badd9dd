#!/usr/bin/env bash
# The main job on a built-in default, offline:
#   1. plan: will Qwen2.5-Coder-32B fit on a 32 GB M1 Max, at which quantization and context?
#   2. quantize a real model to Q4_K_M (the shared kjv-llama-7m model when ../shared is there,
#      otherwise a synthetic tiny model of the same kind), inspect it, and
#   3. run it: generate text, and measure its perplexity against the F32 original.
set -euo pipefail
cd "$(dirname "$0")/.."
QFIT=${QFIT:-build/release/qfit}
SHARED=${QFIT_SHARED:-../shared}
OUT=build/demo
mkdir -p "$OUT"

has() { "$QFIT" "$1" --help >/dev/null 2>&1; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if has plan; then
  step "qfit plan qwen2.5-coder:32b --machine m1-max-32gb --fit --task code"
  "$QFIT" plan qwen2.5-coder:32b --machine m1-max-32gb --fit --task code
fi

SRC="$SHARED/models/kjv-llama-7m-f32.gguf"
VAL="$SHARED/models/kjv-llama-7m-val.txt"
if [ ! -f "$SRC" ]; then
  echo "demo: $SRC not found; using a synthetic model (random weights: speed/memory only)"
  SRC="$OUT/synth-tiny-f32.gguf"
  "$QFIT" synth --shape tiny --type F32 "$SRC"
  VAL=
fi

step "qfit quantize $SRC $OUT/model-Q4_K_M.gguf Q4_K_M"
"$QFIT" quantize "$SRC" "$OUT/model-Q4_K_M.gguf" Q4_K_M
step "qfit inspect $OUT/model-Q4_K_M.gguf"
"$QFIT" inspect "$OUT/model-Q4_K_M.gguf" | sed -n '1,12p;/^total/,$p'

if has run; then
  step "qfit run $OUT/model-Q4_K_M.gguf -p 'And God said' -n 48"
  "$QFIT" run "$OUT/model-Q4_K_M.gguf" -p "And God said" -n 48 --temp 0
fi
if has ppl && [ -n "$VAL" ]; then
  step "qfit ppl (20 chunks of 512): F32 vs Q4_K_M"
  "$QFIT" ppl "$SHARED/models/kjv-llama-7m-f32.gguf" "$VAL" --chunks 20 2>&1 | grep -E 'Final estimate'
  "$QFIT" ppl "$OUT/model-Q4_K_M.gguf" "$VAL" --chunks 20 2>&1 | grep -E 'Final estimate'
fi
