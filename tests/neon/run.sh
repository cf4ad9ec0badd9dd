#!/bin/sh
# Cross-compiles the quantizers, the kernels (NEON included) and the plain-C
# driver tests/neon/neon_test.c for AArch64 and runs it under qemu-aarch64:
# once on a CPU with dotprod (SDOT kernels) and once on a plain ARMv8.0 CPU
# model (emulated-dot kernels). Then the inference engine (tests/neon/model_test.c:
# the shared model at F32/Q8_0/Q4_K_M against llama.cpp's logits, NEON and scalar)
# on the same two CPU models. Exits nonzero on any failure.
# The shared data folder: $QFIT_SHARED, default ../shared (relative to the repository).
#   usage: sh tests/neon/run.sh        (from the repository root or anywhere)
set -eu
cd "$(dirname "$0")/../.."
CC=${NEON_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU:-qemu-aarch64}
OUT=${NEON_OUT:-build/neon}
for tool in "$CC" "$QEMU"; do
    command -v "$tool" >/dev/null 2>&1 || { echo "tests/neon/run.sh: $tool not found" >&2; exit 1; }
done
mkdir -p "$OUT"
# As the Makefile does on aarch64: only *_neon.c gets the ARMv8.2 dotprod/fp16
# flags; everything else is plain ARMv8.0, so it also runs on CPUs without them.
CFLAGS="-std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc -pthread -Wall -Wextra -Werror -Wshadow \
    -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter"
OBJS=""
for src in $(ls src/quant/*.c src/kernels/*.c | grep -v -e '_avx2\.c$' -e '_avx512\.c$') tests/neon/neon_test.c; do
    obj="$OUT/$(echo "$src" | tr / _).o"
    case "$src" in
        *_neon.c) isa="-march=armv8.2-a+dotprod+fp16" ;;
        *) isa="" ;;
    esac
    "$CC" $CFLAGS $isa -c "$src" -o "$obj"
    OBJS="$OBJS $obj"
done
"$CC" -static $OBJS -o "$OUT/neon_test" -lm -lpthread
echo "== qemu-aarch64 -cpu max (dotprod)"
QFIT_ISA=neon "$QEMU" -cpu max "$OUT/neon_test"
echo "== qemu-aarch64 -cpu cortex-a72 (no dotprod)"
QFIT_ISA=neon "$QEMU" -cpu cortex-a72 "$OUT/neon_test"

# The inference engine: model, GGUF reader/writer, quantizer, sampling on top of the
# above (no tokenizer: the prompts' ids come from the reference files).
SHARED=${QFIT_SHARED:-../shared}
if [ ! -f "$SHARED/models/kjv-llama-7m-f32.gguf" ]; then
    if [ "${CI:-}" = true ]; then
        echo "tests/neon/run.sh: $SHARED/models/kjv-llama-7m-f32.gguf not found" >&2; exit 1
    fi
    echo "== model test skipped: $SHARED/models/kjv-llama-7m-f32.gguf not found (set QFIT_SHARED)"
    exit 0
fi
MOBJS=""
for src in $(ls src/quant/*.c src/kernels/*.c src/gguf/*.c src/model/*.c src/vulkan/*.c src/quantize/*.c src/imatrix/*.c src/sample/*.c src/config/*.c src/synth/*.c src/platform/*.c \
             | grep -v -e '_avx2\.c$' -e '_avx512\.c$') tests/neon/model_test.c; do
    obj="$OUT/$(echo "$src" | tr / _).o"
    case "$src" in
        *_neon.c) isa="-march=armv8.2-a+dotprod+fp16" ;;
        *) isa="" ;;
    esac
    case " $OBJS " in
        *" $obj "*) ;;   # built above
        *) "$CC" $CFLAGS $isa -c "$src" -o "$obj" ;;
    esac
    MOBJS="$MOBJS $obj"
done
"$CC" -static $MOBJS -o "$OUT/model_test" -lm -lpthread
echo "== model test: qemu-aarch64 -cpu max (dotprod), F32/Q8_0/Q4_K_M, NEON and scalar (references: tests/data/kjv-logits)"
QFIT_ISA=neon "$QEMU" -cpu max "$OUT/model_test" "$SHARED" full
echo "== model test: qemu-aarch64 -cpu cortex-a72 (no dotprod), Q8_0/Q4_K_M, NEON"
QFIT_ISA=neon "$QEMU" -cpu cortex-a72 "$OUT/model_test" "$SHARED" quick
