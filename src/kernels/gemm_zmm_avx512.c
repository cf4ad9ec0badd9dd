/* AVX-512 VNNI kernels on 512-bit vectors (compiled with the AVX-512 flags): the
 * kernels whose 256-bit form (gemm_avx512.c) runs out of registers. One zmm holds
 * a 16-row panel's lanes, so a 4-activation-row tile of Q4_K on its nibbles keeps
 * its sums (4 x 2 sub-block pairs + 4 block sums + 4 float sums) in 16 registers
 * instead of 32 + temporaries. Same panel layout (R = 16) as gemm_avx512.c. */
#define QG_L 16
#define QG_VNNI 1
#define QG_NV 1
#define QG_NA 4
#define QG_FN(x) g5z_##x
#include "kernels/gemm_x86.h"

/* Fewer than 4 rows stay on the 256-bit kernel: with one activation row its two
 * vectors per panel give 4 independent dependency chains to this one's 2, and one
 * row on packed weights (generation) ran 10% slower here (1.60 vs 1.45 ms, 32768 x
 * 2048, 1 thread); from 4 rows this one is 1.34x faster (3.87 vs 5.17 ms at 8). */
static void k4n_run(int64_t k, const void *panel, int nw, const void *A, size_t as, int64_t m, float *Y,
                    int64_t ldy)
{
    g5z_k4n(k, panel, nw, A, as, m, Y, ldy);
}

void qk_fill_gemm_avx512_zmm(qk_table *t)
{
    t->panel[QFIT_TYPE_Q4_K].run = k4n_run;
    /* Q6_K on its bits as stored (212 bytes per 256 weights of a row, 210 stored):
     * packed at load like Q4_K */
    t->panel[QFIT_TYPE_Q6_K] = (qk_panel){g5z_k6n, g5z_pack_q6_K_n, QG_R, 4, NULL, QK_PF_K6N, 1};
}
