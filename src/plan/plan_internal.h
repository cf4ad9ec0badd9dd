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
/* The engine's KV cache for n_seq sequences of n_ctx positions in passes of n_batch
 * tokens, K of type_k and V of type_v (qfit_kv_cache_bytes_ctx: sliding-window layers
 * hold the window and a micro-batch); *k_bytes (may be NULL) gets the K part. 0 if
 * impossible. */
uint64_t plan_engine_kv_bytes(const qfit_plan_model *m, int64_t n_ctx, int n_seq, int n_batch, int type_k,
                              int type_v, uint64_t *k_bytes);
/* Of the layers, how many hold a sliding window shorter than n_ctx in the cache for
 * passes of n_batch tokens (*n_sliding), and the cells per sequence each holds (*cells;
 * n_ctx when none): the layer recipes (qfit_layer_recipe_of) and qfit_kv_swa_cells. */
void plan_engine_kv_layout(const qfit_plan_model *m, int64_t n_ctx, int n_batch, int64_t *n_sliding, int64_t *cells);
/* The Vulkan backend's device buffers besides the weights, for n_gpu_layers offloaded
 * (qfit_vulkan_context_bytes): its KV cache and its activations. 0, or -1 when the backend
 * would refuse the settings (its cache types). */
int plan_engine_vulkan_bytes(const qfit_plan_model *m, int64_t n_ctx, int n_batch, int n_seq, int type_k, int type_v,
                             int n_gpu_layers, uint64_t *kv, uint64_t *compute);
/* Whether the engine has this KV cache type (qfit_kv_type_ok). */
bool plan_engine_kv_type_ok(int type);
/* What a run writes of the engine's compute buffers (the rest stays virtual):
 * the allocation (qfit_compute_buffer_bytes) less, from the engine's own layout,
 * the unwritten tails of three buffers sized for the worst case:
 *   logits: n_batch rows; the workload writes logits_rows of them
 *   xn:     rows as wide as max(n_embd, n_ff, heads x dim); rows of n_embd are written
 *   aq:     rows of 4 bytes per element; the activations are written in the weights'
 *           vec-dot type, aq_row bytes per row (plan_engine_aq_row_bytes)
 * *alloc gets the allocation. */
uint64_t plan_engine_compute_written(const qfit_plan_model *m, int64_t n_cells, int n_batch, bool flash,
                                     int64_t logits_rows, uint64_t aq_row, uint64_t *alloc);
/* Widest activation row the forward pass quantizes for these weight types (one per
 * tensor of m, types[i] for m->tensors[i]): bytes of qfit_vec_dot_type rows. */
uint64_t plan_engine_aq_row_bytes(const qfit_plan_model *m, const int *types);
/* llama.cpp's "70B" class of a catalog model (qfit_mix_model_classify: the rule the
 * quantizer applies to GGUF files). */
bool plan_mix_is_70b(const char *arch, int64_t n_layer, int64_t n_head, int64_t n_head_kv, int64_t n_expert);
/* The quantizer's reading of a GGUF's model facts (expert count, llama.cpp's
 * "70B" class) into m. 0 / -1 + err. */
struct qfit_gguf;
int plan_mix_facts_from_gguf(const struct qfit_gguf *g, qfit_plan_model *m, char *err, size_t err_len);
/* llama.cpp's mix name / id (quantizer's table). */
int         plan_ftype_from_name(const char *name);
const char *plan_ftype_name(int ftype);

#endif
