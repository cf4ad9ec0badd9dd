#!/bin/bash
# Regenerates the K-quant reference vectors used by tests/test_quant_k.c.
#
#   rows.f32   4 rows x 256 float32 (little-endian), produced by the Python
#              (stdlib only) generator below with a fixed seed:
#                row 0: gaussian sub-blocks whose scales differ by up to 10^6
#                       and whose means are shifted (exercises the min search)
#                row 1: heavy-tailed values plus one outlier of 500
#                row 2: small multiples of 1/3 (rounding ties), sub-blocks 3 and
#                       12 all zero
#                row 3: all negative; sub-block 5 is 1e6 times larger
#   TYPE.q     ggml's own quantization of rows.f32 (ggml_quantize_chunk with
#              imatrix = NULL), made with the llama.cpp peer tool:
#                quantize-ref TYPE 256 rows.f32 TYPE.q
#              for TYPE in q2_K q3_K q4_K q5_K q6_K.
#
# Usage: bash tests/data/kquant/gen.sh [PEER_BIN_DIR]
#   PEER_BIN_DIR defaults to $PEER or ~/.cache/qfit-peer/build/bin
#   (see ../shared/peer/README.md for building the peer tools).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peer=${1:-${PEER:-$HOME/.cache/qfit-peer/build/bin}}

python3 - "$here/rows.f32" <<'PY'
import math, random, struct, sys
R = random.Random(20240611)
N = 256
rows = []
# row 0
x = []
for s in range(16):
    scale = 10 ** R.uniform(-3, 3)
    shift = R.uniform(-2, 2) * scale
    x += [R.gauss(0, 1) * scale + shift for _ in range(16)]
rows.append(x)
# row 1
x = [R.gauss(0, 1) / math.sqrt(max(R.expovariate(1.0), 1e-6)) for _ in range(N)]
x[R.randrange(N)] = 500.0
rows.append(x)
# row 2
x = [R.randint(-6, 5) / 3 for _ in range(N)]
for i in list(range(48, 64)) + list(range(192, 208)):
    x[i] = 0.0
rows.append(x)
# row 3
x = [-abs(R.gauss(0, 1)) * (1e3 if i // 16 == 5 else 1e-3) for i in range(N)]
rows.append(x)
flat = [v for r in rows for v in r]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<%df" % len(flat), *flat))
PY

for t in q2_K q3_K q4_K q5_K q6_K; do
    "$peer/quantize-ref" "$t" 256 "$here/rows.f32" "$here/$t.q"
done
ls -l "$here"
