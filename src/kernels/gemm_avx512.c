/* AVX-512 VNNI register-tiled gemm kernels (compiled with the AVX-512 flags):
 * vpdpbusd on 256-bit vectors, 16 rows per panel, 4 activation rows per tile. */
#define QG_L 8
#define QG_VNNI 1
#define QG_NV 2
#define QG_NA 4
#define QG_FN(x) g5_##x
#include "kernels/gemm_x86.h"

void qk_fill_gemm_avx512(qk_table *t)
{
    t->panel[QFIT_TYPE_F32] = (qk_panel){NULL, NULL, 0, 2, g5_direct_f32, -1};
    t->panel[QFIT_TYPE_F16] = (qk_panel){NULL, NULL, 0, 2, g5_direct_f16, -1};
    t->panel[QFIT_TYPE_BF16] = (qk_panel){NULL, NULL, 0, 2, g5_direct_bf16, -1};
    t->panel[QFIT_TYPE_Q4_0] = (qk_panel){g5_q8, g5_pack_q4_0, QG_R, 8, NULL, QK_PF_Q8};
    t->panel[QFIT_TYPE_Q5_0] = (qk_panel){g5_q8, g5_pack_q5_0, QG_R, 8, NULL, QK_PF_Q8};
    t->panel[QFIT_TYPE_Q8_0] = (qk_panel){g5_q8, g5_pack_q8_0, QG_R, 8, NULL, QK_PF_Q8};
    t->panel[QFIT_TYPE_IQ4_NL] = (qk_panel){g5_q8, g5_pack_iq4_nl, QG_R, 8, NULL, QK_PF_Q8};
    t->panel[QFIT_TYPE_MXFP4] = (qk_panel){g5_q8, g5_pack_mxfp4, QG_R, 8, NULL, QK_PF_Q8};
    t->panel[QFIT_TYPE_Q4_1] = (qk_panel){g5_q8u, g5_pack_q4_1, QG_R, 8, NULL, QK_PF_Q8U};
    t->panel[QFIT_TYPE_Q5_1] = (qk_panel){g5_q8u, g5_pack_q5_1, QG_R, 8, NULL, QK_PF_Q8U};
    t->panel[QFIT_TYPE_Q4_K] = (qk_panel){g5_k4n, g5_pack_q4_K_n, QG_R, 4, NULL, QK_PF_K4N};
    t->panel[QFIT_TYPE_Q5_K] = (qk_panel){g5_k32, g5_pack_q5_K, QG_R, 8, NULL, QK_PF_K32};
    t->panel[QFIT_TYPE_Q6_K] = (qk_panel){g5_k16, g5_pack_q6_K, QG_R, 4, NULL, QK_PF_K16};
    /* packed by the portable packer (gemm_pack.c) */
    t->panel[QFIT_TYPE_Q3_K] = (qk_panel){g5_k16, NULL, QG_R, 8, NULL, QK_PF_K16};
    t->panel[QFIT_TYPE_Q2_K] = (qk_panel){g5_k16m, NULL, QG_R, 8, NULL, QK_PF_K16};
    t->panel[QFIT_TYPE_IQ4_XS] = (qk_panel){g5_k32o, NULL, QG_R, 8, NULL, QK_PF_K32};
}
