/* AVX2 register-tiled gemm kernels (compiled with -mavx2 -mfma -mf16c):
 * 8 rows per vector, maddubs/madd instead of VNNI. Types whose values need
 * more than 6 bits plus sign (Q8_0, IQ4_NL, IQ4_XS) would saturate maddubs and
 * keep the per-pair dot products; MXFP4's doubled E2M1 values (|v| <= 12) fit.
 * Q2_K and Q3_K are packed by the portable packer (gemm_pack.c). */
#define QG_L 8
#define QG_VNNI 0
#define QG_NV 2
#define QG_NA 2
#define QG_FN(x) g2_##x
#include "kernels/gemm_x86.h"

void qk_fill_gemm_avx2(qk_table *t)
{
    t->panel[QFIT_TYPE_F32] = (qk_panel){NULL, NULL, 0, 2, g2_direct_f32, -1, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_F16] = (qk_panel){NULL, NULL, 0, 2, g2_direct_f16, -1, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_BF16] = (qk_panel){NULL, NULL, 0, 2, g2_direct_bf16, -1, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q4_0] = (qk_panel){g2_q8, g2_pack_q4_0, QG_R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q5_0] = (qk_panel){g2_q8, g2_pack_q5_0, QG_R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_MXFP4] = (qk_panel){g2_q8, g2_pack_mxfp4, QG_R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q4_1] = (qk_panel){g2_q8u, g2_pack_q4_1, QG_R, 8, NULL, QK_PF_Q8U, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q5_1] = (qk_panel){g2_q8u, g2_pack_q5_1, QG_R, 8, NULL, QK_PF_Q8U, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q4_K] = (qk_panel){g2_k32, g2_pack_q4_K, QG_R, 8, NULL, QK_PF_K32, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q5_K] = (qk_panel){g2_k32, g2_pack_q5_K, QG_R, 8, NULL, QK_PF_K32, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q6_K] = (qk_panel){g2_k16, g2_pack_q6_K, QG_R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q3_K] = (qk_panel){g2_k16, NULL, QG_R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q2_K] = (qk_panel){g2_k16m, NULL, QG_R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
}
