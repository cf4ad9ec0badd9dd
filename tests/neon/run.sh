#!/bin/sh
# Cross-compiles the quantizers, the kernels (NEON included) and the plain-C
# driver tests/neon/neon_test.c for AArch64 and runs it under qemu-aarch64:
# once on a CPU with dotprod (SDOT kernels) and once on a plain ARMv8.0 CPU
# model (emulated-dot kernels). Exits nonzero on any failure.
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
