#!/bin/bash
# Quantize to a size against llama.cpp's mixes, on the shared model: at the file sizes
# of Q4_K_M and Q3_K_M, qfit quantize --target-size with a calibration text (with and
# without an importance matrix) beside the mix itself (qfit writes it byte-identical to
# llama.cpp's quantizer) with and without that imatrix. Then qfit eval over all of
# them: mean KL divergence from the F32 model on the first CHUNKS chunks of 512 of the
# validation text. The calibration text and the imatrix come from the last 150 kB of the
# validation text, which the evaluated chunks never reach (16 chunks = the first ~27 kB).
# With the peer harness built (bash ../shared/peer/setup.sh), llama.cpp's perplexity
# tool loads each target file and measures its KL divergence too.
#   usage: bash bench/eval/target.sh [CHUNKS]     (default 16)
# Writes bench/results/target-kjv-llama-7m.md; a few minutes on 2 threads.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${QFIT_SHARED:-../shared}
M=$SHARED/models/kjv-llama-7m-f32.gguf
T=$SHARED/models/kjv-llama-7m-val.txt
CHUNKS=${1:-16}
TH=${THREADS:-2}
OUT=bench/results/target-kjv-llama-7m.md
PEER=${QFIT_PEER_BIN:-$HOME/.cache/qfit-peer/build/bin}
make -s -j2 release
Q=./build/release/qfit
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

tail -c 150000 "$T" >"$W/calib.txt"
$Q imatrix "$M" "$W/calib.txt" -o "$W/calib.imatrix.gguf" --threads "$TH" >/dev/null 2>&1
files=()
for mix in Q4_K_M Q3_K_M; do
    $Q quantize "$M" "$W/$mix.gguf" "$mix" --threads "$TH" >/dev/null
    $Q quantize "$M" "$W/$mix-imatrix.gguf" "$mix" --imatrix "$W/calib.imatrix.gguf" --threads "$TH" >/dev/null
    size=$(stat -c %s "$W/$mix.gguf")
    size_im=$(stat -c %s "$W/$mix-imatrix.gguf")
    $Q quantize "$M" "$W/target-$mix-size.gguf" --target-size "$size" --calibrate "$W/calib.txt" \
        --threads "$TH" 2>/dev/null | grep -E "target  " >&2
    $Q quantize "$M" "$W/target-$mix-size-imatrix.gguf" --target-size "$size_im" --calibrate "$W/calib.txt" \
        --imatrix "$W/calib.imatrix.gguf" --threads "$TH" 2>/dev/null | grep -E "target  " >&2
    $Q quantize "$M" "$W/estimate-$mix-size-imatrix.gguf" --target-size "$size_im" \
        --imatrix "$W/calib.imatrix.gguf" --threads "$TH" >/dev/null 2>&1
    files+=("$W/$mix.gguf" "$W/$mix-imatrix.gguf" "$W/target-$mix-size.gguf" "$W/target-$mix-size-imatrix.gguf"
            "$W/estimate-$mix-size-imatrix.gguf")
done
list=$(IFS=,; echo "${files[*]}")
{
    echo "\`bash bench/eval/target.sh $CHUNKS\` ($(date -u +%Y-%m-%d), $TH threads):"
    echo
    $Q eval "$M" "$T" --files "$list" --chunks "$CHUNKS" --threads "$TH" --no-speed 2>/dev/null |
        grep -E '^\|' | grep -v 'base (full'
    if [ -x "$PEER/peer-ppl" ]; then
        echo
        echo "llama.cpp (peer-ppl --kld-base, the same $CHUNKS chunks) on the same files:"
        echo
        echo "| file | mean KLD (llama.cpp) | PPL (llama.cpp) |"
        echo "|---|---:|---:|"
        "$PEER/peer-ppl" "$M" "$T" --chunks "$CHUNKS" --threads "$TH" --save-logits "$W/f32.bin" >/dev/null 2>&1
        for f in "${files[@]}"; do
            s=$("$PEER/peer-ppl" "$f" "$T" --chunks "$CHUNKS" --threads "$TH" --kld-base "$W/f32.bin" 2>&1 |
                grep KLD_SUMMARY)
            kld=$(sed -n 's/.*mean_kld=\([0-9.]*\).*/\1/p' <<<"$s")
            ppl=$(sed -n 's/.*ppl_q=\([0-9.]*\).*/\1/p' <<<"$s")
            echo "| $(basename "$f") | $kld | $ppl |"
        done
    fi
} >"$OUT"
cat "$OUT"
