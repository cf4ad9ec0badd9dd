/* AVX2 + FMA + F16C kernels (this file is compiled with -mavx2 -mfma -mf16c). */
#include "quant/quant_internal.h"
#define QK_X86_FILL qk_fill_avx2
#include "kernels/dot_x86.h"
