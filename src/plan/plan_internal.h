/* Internal to the planner: the one place where it calls into the quantizer's
 * mix rules and the engine's sizing functions (plan_engine.c). */
#ifndef QFIT_PLAN_INTERNAL_H
#define QFIT_PLAN_INTERNAL_H

#include "qfit/plan.h"

/* Weight bytes of m under the llama.cpp mix ftype, tensor by tensor, with the
 * quantizer's own per-tensor rules (qfit_mix_plan). types (may be NULL) receives
 * each tensor's chosen qfit_type. 0 / -1 + err. */
int plan_mix_weight_bytes(const qfit_plan_model *m, int ftype, uint64_t *out, int *types,
                          char *err, size_t err_len);
/* The engine's KV cache size for n_cells cells of type kv_type (K and V). 0 if impossible. */
uint64_t plan_engine_kv_bytes(const qfit_plan_model *m, int64_t n_cells, int kv_type);
/* The engine's compute buffers for a context of n_cells and micro-batch n_batch. */
uint64_t plan_engine_compute_bytes(const qfit_plan_model *m, int64_t n_cells, int n_batch);
/* The quantizer's reading of a GGUF's model facts (expert count, llama.cpp's
 * "70B" class) into m. 0 / -1 + err. */
struct qfit_gguf;
int plan_mix_facts_from_gguf(const struct qfit_gguf *g, qfit_plan_model *m, char *err, size_t err_len);
/* llama.cpp's mix name / id (quantizer's table). */
int         plan_ftype_from_name(const char *name);
const char *plan_ftype_name(int ftype);

#endif
