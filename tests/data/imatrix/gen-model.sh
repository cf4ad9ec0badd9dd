#!/bin/bash
# Regenerates the model-level imatrix references used by tests/test_imatrix.c:
#
#   kjv-2x128.imatrix.txt   llama.cpp's importance matrix of the shared model on the first
#                           2 chunks of 128 tokens of the validation text, collected through
#                           llama.cpp's eval callback and written with ggml's gguf API the
#                           way llama-imatrix does (bench/peer_imatrix.c "collect"; run from
#                           the models folder so the dataset name is the bare file name), kept
#                           as text (tests/data/imatrix/imatrix-to-text.c) with the FNV-1a 64
#                           and size of llama.cpp's file; tu_imatrix_kjv() rebuilds the GGUF.
#   kjv-imatrix.sha256      for each mix, the SHA-256 of the file llama.cpp's quantizer writes
#                           from the shared F32 model with that imatrix (llama_model_quantize
#                           with llama_model_imatrix_data and llama-quantize's quantize.imatrix.*
#                           metadata; bench/peer_imatrix.c "quantize", 2 threads), the imatrix
#                           given as llama.cpp's GGUF.
#
# Usage (from the repository root): QFIT_SHARED=/path/to/shared bash tests/data/imatrix/gen-model.sh
set -euo pipefail
root=$(pwd)
[[ -f $root/tests/data/imatrix/gen-model.sh ]] || { echo "run from the repository root" >&2; exit 1; }
source "$root/bench/common.sh"
qb_find_peer
qb_build_peer_imatrix
models=$(qb_shared_dir_hint)/models
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# the quantized files record the imatrix path they were given (quantize.imatrix.file): it is
# the relative name below, run from $tmp, so the digests do not depend on where this ran
rel=tests/data/imatrix/kjv-2x128.imatrix.gguf
mkdir -p "$tmp/tests/data/imatrix"
(cd "$models" && "$QB_PEER_IMATRIX" collect kjv-llama-7m-f32.gguf kjv-llama-7m-val.txt "$tmp/$rel" --ctx 128 --chunks 2 --threads 2)
# the text form: llama.cpp's file digest and size first, then its content
make -s release
cc -O1 -std=c11 -Iinclude tests/data/imatrix/imatrix-to-text.c build/release/libqfit.a -lm -lpthread -o "$tmp/im2txt"
fnv=$(python3 -c 'import sys
h=0xcbf29ce484222325
for b in open(sys.argv[1],"rb").read(): h=((h^b)*0x100000001b3)&0xffffffffffffffff
print("%016x" % h)' "$tmp/$rel")
{ echo "llama_cpp_file_fnv1a64 $fnv"; echo "llama_cpp_file_bytes $(stat -c %s "$tmp/$rel")"; "$tmp/im2txt" "$tmp/$rel"; } \
    > tests/data/imatrix/kjv-2x128.imatrix.txt
out=$root/tests/data/imatrix/kjv-imatrix.sha256
: > "$out"
for t in Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K_S Q3_K_M Q3_K_L Q4_K_S Q4_K_M Q5_K_S Q5_K_M Q6_K IQ4_NL IQ4_XS; do
    (cd "$tmp" && "$QB_PEER_IMATRIX" quantize "$models/kjv-llama-7m-f32.gguf" "$tmp/$t.gguf" "$t" "$rel" 2 >/dev/null)
    printf '%s\t%s\n' "$t" "$(sha256sum "$tmp/$t.gguf" | cut -c1-64)" >> "$out"
done
cat "$out"
