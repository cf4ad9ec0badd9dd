#!/bin/bash
# Regenerates the model-level imatrix references used by tests/test_imatrix.c:
#
#   kjv-2x128.imatrix.gguf  llama.cpp's importance matrix of the shared model on the first
#                           2 chunks of 128 tokens of the validation text, collected through
#                           llama.cpp's eval callback and written with ggml's gguf API the
#                           way llama-imatrix does (bench/peer_imatrix.c "collect"; run from
#                           the models folder so the dataset name is the bare file name).
#   kjv-imatrix.sha256      for each mix, the SHA-256 of the file llama.cpp's quantizer writes
#                           from the shared F32 model with that imatrix (llama_model_quantize
#                           with llama_model_imatrix_data and llama-quantize's quantize.imatrix.*
#                           metadata; bench/peer_imatrix.c "quantize", 2 threads), the imatrix
#                           given as tests/data/imatrix/kjv-2x128.imatrix.gguf from the repo root.
#
# Usage (from the repository root): QFIT_SHARED=/path/to/shared bash tests/data/imatrix/gen-model.sh
set -euo pipefail
root=$(pwd)
[[ -f $root/tests/data/imatrix/gen-model.sh ]] || { echo "run from the repository root" >&2; exit 1; }
source "$root/bench/common.sh"
qb_find_peer
qb_build_peer_imatrix
models=$(qb_shared_dir_hint)/models
rel=tests/data/imatrix/kjv-2x128.imatrix.gguf
(cd "$models" && "$QB_PEER_IMATRIX" collect kjv-llama-7m-f32.gguf kjv-llama-7m-val.txt "$root/$rel" --ctx 128 --chunks 2 --threads 2)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out=$root/tests/data/imatrix/kjv-imatrix.sha256
: > "$out"
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS; do
    "$QB_PEER_IMATRIX" quantize "$models/kjv-llama-7m-f32.gguf" "$tmp/$t.gguf" "$t" "$rel" 2 >/dev/null
    printf '%s\t%s\n' "$t" "$(sha256sum "$tmp/$t.gguf" | cut -c1-64)" >> "$out"
done
cat "$out"
