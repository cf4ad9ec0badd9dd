#!/usr/bin/env bash
# The main job on a built-in default, offline:
#   1. plan: will Qwen2.5-Coder-32B fit on a 32 GB M1 Max, at which quantization and context?
#   2. quantize a real model to Q4_K_M (the shared kjv-llama-7m model when ../shared is there,
#      otherwise a synthetic tiny model of the same kind), inspect it, and
#   3. run it: generate text, and measure its perplexity against the F32 original;
#   4. the Ollama verbs on a demo store (build/demo/store, not ~/.qfit): import, create from a
#      Modelfile (quantizing while importing), list, show, run one-shot through the template.
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

if has create; then
  export QFIT_MODELS="$PWD/$OUT/store"
  rm -rf "$QFIT_MODELS"
  step "QFIT_MODELS=$QFIT_MODELS qfit import $SRC kjv"
  "$QFIT" import "$SRC" kjv
  cat > "$OUT/Modelfile" <<'MF'
# a base model: the "chat" template continues the user's text
FROM kjv
TEMPLATE """{{ .Prompt }}"""
SYSTEM """Scripture, continued."""
PARAMETER temperature 0
PARAMETER num_predict 40
MF
  step "qfit create kjv-bible -f $OUT/Modelfile --quantize Q4_K_M"
  cat "$OUT/Modelfile"
  "$QFIT" create kjv-bible -f "$OUT/Modelfile" --quantize Q4_K_M
  step "qfit list"
  "$QFIT" list
  step "qfit show kjv-bible"
  "$QFIT" show kjv-bible
  step "qfit show kjv-bible --modelfile"
  "$QFIT" show kjv-bible --modelfile
  step "qfit run kjv-bible 'And God said'"
  "$QFIT" run kjv-bible "And God said"
  echo
fi
