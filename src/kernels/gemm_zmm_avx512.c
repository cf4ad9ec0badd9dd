/* AVX-512 VNNI kernels on 512-bit vectors (compiled with the AVX-512 flags) for the
 * layouts packed once at load (Q4_K, Q6_K, Q8_0, Q4_0, IQ4_NL, IQ4_XS with their bits as stored; see
 * qfit_pack_matrix); gemm_avx512.c leaves those types to this file. For Q4_K the
 * 256-bit form runs out of registers: one zmm holds a 16-row panel's lanes, so a
 * 4-activation-row tile of Q4_K on its nibbles keeps its sums (4 x 2 sub-block pairs
 * + 4 block sums + 4 float sums) in 16 registers instead of 32 + temporaries. Same
 * panel rows (R = 16) as gemm_avx512.c. */
#define QG_L 16
#define QG_VNNI 1
#define QG_NV 1
#define QG_NA 4
#define QG_FN(x) g5z_##x
#include "kernels/gemm_x86.h"

void qk_fill_gemm_avx512_zmm(qk_table *t)
{
    /* from 4 rows 1.34x faster than the 256-bit tile (3.87 vs 5.17 ms at 8 rows, 32768 x
     * 2048, 1 thread); one row splits its sums into 4 chains (qg_k4n_tile) */
    t->panel[QFIT_TYPE_Q4_K] = (qk_panel){g5z_k4n, g5z_pack_q4_K_n, QG_R, 4, NULL, QK_PF_K4N, 1, QK_ACT_ROWS};
    /* Q6_K on its bits as stored (212 bytes per 256 weights of a row, 210 stored):
     * packed at load like Q4_K */
    t->panel[QFIT_TYPE_Q6_K] = (qk_panel){g5z_k6n, g5z_pack_q6_K_n, QG_R, 4, NULL, QK_PF_K6N, 1, QK_ACT_ROWS};
    /* Q8_0 as stored (34 bytes per 32 weights of a row): packed at load too */
    t->panel[QFIT_TYPE_Q8_0] = (qk_panel){g5z_q8n, g5z_pack_q8_0_n, QG_R, 8, NULL, QK_PF_Q8N, 1, QK_ACT_ROWS};
    /* Q4_0 and IQ4_NL on their nibbles as stored (18 bytes per 32 weights of a row):
     * packed at load; the activations with their block sums (QK_ACT_Q8S) */
    t->panel[QFIT_TYPE_Q4_0] = (qk_panel){g5z_q40n, g5z_pack_q4_0_n, QG_R, 8, NULL, QK_PF_Q4N, 1, QK_ACT_Q8S};
    t->panel[QFIT_TYPE_IQ4_NL] = (qk_panel){g5z_iq4n, g5z_pack_iq4_nl_n, QG_R, 8, NULL, QK_PF_Q4N, 1, QK_ACT_Q8S};
    t->act_q8s = g5z_act_q8s;
    /* IQ4_XS as Q4_K on its nibbles, levels through a table (140 bytes per 256 weights
     * of a row, 136 stored) */
    t->panel[QFIT_TYPE_IQ4_XS] = (qk_panel){g5z_x4n, g5z_pack_iq4_xs_n, QG_R, 4, NULL, QK_PF_X4N, 1, QK_ACT_ROWS};
}
