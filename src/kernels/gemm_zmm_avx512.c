/* AVX-512 VNNI kernels on 512-bit vectors (compiled with the AVX-512 flags): every
 * quantized type's panel on AVX-512 (gemm_avx512.c has the float types). A zmm holds
 * a 16-row panel's lanes (R = 16), one vector per panel: against the 256-bit form (2
 * vectors per panel) the same work in half the instructions, and Q4_K on its nibbles
 * keeps its sums (4 x 2 sub-block pairs + 4 block sums + 4 float sums) in 16 registers
 * instead of 32 + temporaries. Measured (one thread, 2048 x 2048, 64 activation rows,
 * GMAC/s, 256-bit -> 512-bit): the per-call 32-element families (Q4_1 Q5_0 Q5_1 MXFP4)
 * about 133 -> 195, Q5_K 128 -> 195, Q3_K and Q2_K about 15% (under load). The types
 * with a load-time layout (qfit_pack_matrix) keep their bits as stored: Q4_K, Q6_K,
 * Q8_0, Q4_0, IQ4_NL, IQ4_XS. */
#define QG_L 16
#define QG_VNNI 1
#define QG_NV 1
#define QG_NA 4
#define QG_FN(x) g5z_##x
#include "kernels/gemm_x86.h"

void qk_fill_gemm_avx512_zmm(qk_table *t)
{
    /* packed at load, on their bits as stored */
    /* Q4_K: 152 bytes per 256 weights of a row (144 stored); from 4 rows 1.34x faster than
     * the 256-bit tile (3.87 vs 5.17 ms at 8 rows, 32768 x 2048, 1 thread); one row
     * splits its sums into 4 chains (qg_k4n_tile) */
    t->panel[QFIT_TYPE_Q4_K] = (qk_panel){g5z_k4n, g5z_pack_q4_K_n, QG_R, 4, NULL, QK_PF_K4N, 1, QK_ACT_ROWS};
    /* Q6_K: 212 bytes per 256 weights of a row (210 stored) */
    t->panel[QFIT_TYPE_Q6_K] = (qk_panel){g5z_k6n, g5z_pack_q6_K_n, QG_R, 4, NULL, QK_PF_K6N, 1, QK_ACT_ROWS};
    /* IQ4_XS as Q4_K on its nibbles, levels through a table (140 bytes per 256 weights
     * of a row, 136 stored) */
    t->panel[QFIT_TYPE_IQ4_XS] = (qk_panel){g5z_x4n, g5z_pack_iq4_xs_n, QG_R, 4, NULL, QK_PF_X4N, 1, QK_ACT_ROWS};
    /* Q8_0 as stored (34 bytes per 32 weights of a row) */
    t->panel[QFIT_TYPE_Q8_0] = (qk_panel){g5z_q8n, g5z_pack_q8_0_n, QG_R, 8, NULL, QK_PF_Q8N, 1, QK_ACT_ROWS};
    /* Q4_0 and IQ4_NL on their nibbles as stored (18 bytes per 32 weights of a row);
     * the activations with their block sums (QK_ACT_Q8S) */
    t->panel[QFIT_TYPE_Q4_0] = (qk_panel){g5z_q40n, g5z_pack_q4_0_n, QG_R, 8, NULL, QK_PF_Q4N, 1, QK_ACT_Q8S};
    t->panel[QFIT_TYPE_IQ4_NL] = (qk_panel){g5z_iq4n, g5z_pack_iq4_nl_n, QG_R, 8, NULL, QK_PF_Q4N, 1, QK_ACT_Q8S};
    t->act_q8s = g5z_act_q8s;

    /* packed per call (their compact forms are not yet as fast for a batch) */
    t->panel[QFIT_TYPE_Q5_0] = (qk_panel){g5z_q8, g5z_pack_q5_0, QG_R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_MXFP4] = (qk_panel){g5z_q8, g5z_pack_mxfp4, QG_R, 8, NULL, QK_PF_Q8, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q4_1] = (qk_panel){g5z_q8u, g5z_pack_q4_1, QG_R, 8, NULL, QK_PF_Q8U, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q5_1] = (qk_panel){g5z_q8u, g5z_pack_q5_1, QG_R, 8, NULL, QK_PF_Q8U, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q5_K] = (qk_panel){g5z_k32, g5z_pack_q5_K, QG_R, 8, NULL, QK_PF_K32, 0, QK_ACT_ROWS};
    /* by the portable packer (gemm_pack.c) */
    t->panel[QFIT_TYPE_Q3_K] = (qk_panel){g5z_k16, NULL, QG_R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
    t->panel[QFIT_TYPE_Q2_K] = (qk_panel){g5z_k16m, NULL, QG_R, 8, NULL, QK_PF_K16, 0, QK_ACT_ROWS};
}
