/* AVX-512VL + VNNI kernels (compiled with -mavx512f/bw/vl/dq/vnni): the AVX2
 * kernels with vpdpbusd / vpdpwssd fused multiply-accumulates. */
#include "quant/quant_internal.h"
#define QK_USE_VNNI 1
#define QK_X86_FILL qk_fill_avx512
#include "kernels/dot_x86.h"
