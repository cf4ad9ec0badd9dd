#!/bin/bash
# qfit eval over every type qfit writes, on the shared model: the table (markdown),
# its JSON and the SVG chart into bench/results/. Quality only by default (about a
# minute on 2 threads); SPEED=1 adds pp/tg, to be run on an idle machine only.
#   usage: bash bench/eval/run.sh [CHUNKS]      (default 16 chunks of 512 tokens)
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${QFIT_SHARED:-../shared}
M=$SHARED/models/kjv-llama-7m-f32.gguf
T=$SHARED/models/kjv-llama-7m-val.txt
OUT=bench/results/eval-kjv-llama-7m
SPEED_OPT=--no-speed
[ "${SPEED:-0}" = 1 ] && SPEED_OPT=
make -s -j2 release
# one run: the table, its JSON and the chart are the same measurement
./build/release/qfit eval "$M" "$T" --types all --chunks "${1:-16}" --threads "${THREADS:-2}" $SPEED_OPT \
    --svg "$OUT.svg" --json-out "$OUT.json" >"$OUT.md"
cat "$OUT.md"
