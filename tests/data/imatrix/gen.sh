#!/bin/bash
# Regenerates the importance-matrix quantization vectors used by tests/test_imatrix.c.
#
#   rows.f32     6 rows x 512 float32 (little-endian), from the Python (stdlib
#                only) generator below with a fixed seed:
#                  row 0: gaussian 16-value groups whose scales differ by up to
#                         10^6 and whose means are shifted (the min searches)
#                  row 1: heavy-tailed values plus one outlier of 500
#                  row 2: small multiples of 1/3 (rounding ties); values 64..95
#                         and 384..415 all zero
#                  row 3: all negative; group 5 is 10^6 times larger
#                  row 4: plain gaussian
#                  row 5: uniform in [-0.5, 1.5) (mostly one sign)
#   weights.f32  512 float32 importance weights (one per column), log-uniform
#                in [1e-3, 1e2]
#   TYPE.q       ggml's own quantization of rows.f32 with weights.f32 as the
#                importance matrix (ggml_quantize_chunk(type, ..., imatrix)),
#                made with the llama.cpp peer tool (llama.cpp v0.5.0 libraries,
#                see ../shared/peer/README.md):
#                  quantize-ref TYPE 512 rows.f32 TYPE.q --imatrix weights.f32
#
# Usage: bash tests/data/imatrix/gen.sh [PEER_BIN_DIR]
#   PEER_BIN_DIR defaults to $PEER or ~/.cache/qfit-peer/build/bin.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
peer=${1:-${PEER:-$HOME/.cache/qfit-peer/build/bin}}

python3 - "$here/rows.f32" "$here/weights.f32" <<'PY'
import math, random, struct, sys
R = random.Random(20261205)
N = 512
rows = []
x = []
for s in range(N // 16):
    scale = 10 ** R.uniform(-3, 3)
    shift = R.uniform(-2, 2) * scale
    x += [R.gauss(0, 1) * scale + shift for _ in range(16)]
rows.append(x)
x = [R.gauss(0, 1) / math.sqrt(max(R.expovariate(1.0), 1e-6)) for _ in range(N)]
x[R.randrange(N)] = 500.0
rows.append(x)
x = [R.randint(-6, 5) / 3 for _ in range(N)]
for i in list(range(64, 96)) + list(range(384, 416)):
    x[i] = 0.0
rows.append(x)
rows.append([-abs(R.gauss(0, 1)) * (1e3 if i // 16 == 5 else 1e-3) for i in range(N)])
rows.append([R.gauss(0, 1) for _ in range(N)])
rows.append([R.uniform(-0.5, 1.5) for _ in range(N)])
flat = [v for r in rows for v in r]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<%df" % len(flat), *flat))
w = [10 ** R.uniform(-3, 2) for _ in range(N)]
with open(sys.argv[2], "wb") as f:
    f.write(struct.pack("<%df" % N, *w))
PY

for t in q4_0 q4_1 q5_0 q5_1 q2_K q3_K q4_K q5_K q6_K iq4_nl iq4_xs; do
    "$peer/quantize-ref" "$t" 512 "$here/rows.f32" "$here/$t.q" --imatrix "$here/weights.f32" >/dev/null
done
ls -l "$here"
