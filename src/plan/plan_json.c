/* JSON form of a plan (jansson). */
#include "qfit/plan.h"

#include <jansson.h>
#include <stdlib.h>

#include "qfit/quant.h"

static const char *kind_name(qfit_machine_kind k)
{
    switch (k) {
    case QFIT_MACHINE_CPU: return "cpu";
    case QFIT_MACHINE_APPLE: return "apple-unified";
    case QFIT_MACHINE_GPU: return "gpu";
    case QFIT_MACHINE_CUSTOM: return "custom";
    }
    return "?";
}

static json_t *result_obj(const qfit_plan_result *r)
{
    json_t *o = json_object();
    if (!o) return NULL;
    json_t *set = json_object();
    json_object_set_new(set, "quant", json_string(r->mix));
    json_object_set_new(set, "weights_as_stored", json_boolean(r->as_stored));
    json_object_set_new(set, "ctx", json_integer(r->n_ctx));
    json_object_set_new(set, "kv_type", json_string(r->kv_type == r->kv_type_v ? qfit_plan_kv_name(r->kv_type) : "mixed"));
    json_object_set_new(set, "kv_type_k", json_string(qfit_plan_kv_name(r->kv_type)));
    json_object_set_new(set, "kv_type_v", json_string(qfit_plan_kv_name(r->kv_type_v)));
    json_object_set_new(set, "flash_attn", json_boolean(r->flash_attn));
    json_object_set_new(set, "workload", json_string(r->workload == QFIT_PLAN_PPL ? "ppl" : "run"));
    json_object_set_new(set, "parallel", json_integer(r->n_parallel));
    json_object_set_new(set, "batch", json_integer(r->n_batch));
    json_object_set_new(o, "settings", set);
    json_object_set_new(o, "weights_bytes", json_integer((json_int_t)r->weights_bytes));
    json_object_set_new(o, "weights_resident_bytes", json_integer((json_int_t)r->weights_resident_bytes));
    json_object_set_new(o, "kv_bytes", json_integer((json_int_t)r->kv_bytes));
    json_object_set_new(o, "kv_sliding_layers", json_integer((json_int_t)r->kv_sliding_layers));
    json_object_set_new(o, "kv_sliding_cells", json_integer((json_int_t)r->kv_sliding_cells));
    json_object_set_new(o, "kv_k_bytes", json_integer((json_int_t)r->k_bytes));
    json_object_set_new(o, "kv_v_bytes", json_integer((json_int_t)r->v_bytes));
    json_object_set_new(o, "compute_bytes", json_integer((json_int_t)r->compute_bytes));
    json_object_set_new(o, "compute_alloc_bytes", json_integer((json_int_t)r->compute_alloc_bytes));
    json_object_set_new(o, "overhead_bytes", json_integer((json_int_t)r->overhead_bytes));
    json_object_set_new(o, "runtime_reserve_bytes", json_integer((json_int_t)r->runtime_bytes));
    json_t *rt = json_object();
    json_object_set_new(rt, "base_bytes", json_integer((json_int_t)r->runtime_base_bytes));
    json_object_set_new(rt, "base_measured", json_true());
    json_object_set_new(rt, "metadata_bytes", json_integer((json_int_t)r->metadata_bytes));
    json_object_set_new(rt, "tokenizer_bytes", json_integer((json_int_t)r->tokenizer_bytes));
    json_object_set_new(rt, "tokenizer_bytes_per_entry_measured", json_integer(QFIT_PLAN_TOKENIZER_ENTRY_BYTES));
    json_object_set_new(rt, "eval_bytes", json_integer((json_int_t)r->eval_bytes));
    json_object_set_new(o, "runtime", rt);
    if (r->offload) {   /* layer offload: the GPU's side (the fields above are the host's) */
        json_t *g = json_object();
        json_object_set_new(g, "gpu_layers", json_integer(r->n_gpu_layers));
        json_object_set_new(g, "output_layer", json_boolean(r->gpu_output));
        json_object_set_new(g, "unified_memory", json_boolean(r->gpu_unified));
        json_object_set_new(g, "weights_bytes", json_integer((json_int_t)r->gpu_weights_bytes));
        json_object_set_new(g, "kv_bytes", json_integer((json_int_t)r->gpu_kv_bytes));
        json_object_set_new(g, "compute_bytes", json_integer((json_int_t)r->gpu_compute_bytes));
        json_object_set_new(g, "total_bytes", json_integer((json_int_t)r->gpu_total_bytes));
        if (!r->gpu_unified) {
            json_object_set_new(g, "memory_bytes", json_integer((json_int_t)r->gpu_mem_bytes));
            json_object_set_new(g, "budget_bytes", json_integer((json_int_t)r->gpu_budget_bytes));
            json_object_set_new(g, "verdict", json_string(qfit_plan_verdict_name(r->gpu_verdict)));
        }
        json_object_set_new(o, "gpu", g);
    }
    json_object_set_new(o, "os_reserve_bytes", json_integer((json_int_t)r->os_bytes));
    json_object_set_new(o, "process_bytes", json_integer((json_int_t)r->process_bytes));
    json_object_set_new(o, "total_bytes", json_integer((json_int_t)r->total_bytes));
    json_object_set_new(o, "budget_bytes", json_integer((json_int_t)r->budget_bytes));
    json_object_set_new(o, "verdict", json_string(qfit_plan_verdict_name(r->verdict)));
    json_object_set_new(o, "bits_per_weight", json_real(r->bits_per_weight));
    json_t *sp = json_object();
    json_object_set_new(sp, "estimate", json_true());
    json_object_set_new(sp, "bytes_per_token", json_integer((json_int_t)r->bytes_per_token));
    json_object_set_new(sp, "tokens_per_s_low", json_real(r->tps_low));
    json_object_set_new(sp, "tokens_per_s_high", json_real(r->tps_high));
    json_object_set_new(o, "speed", sp);
    if (r->note[0]) json_object_set_new(o, "note", json_string(r->note));
    return o;
}

char *qfit_plan_result_json(const qfit_plan_model *m, const qfit_plan_machine *mach,
                            const qfit_plan_result *r, const qfit_plan_fix *fixes, size_t n_fixes,
                            bool fit_requested, const qfit_plan_result *fit)
{
    json_t *root = result_obj(r);
    if (!root) return NULL;
    /* the settings also at top level, for simple consumers */
    json_t *set = json_object_get(root, "settings");
    const char *k;
    json_t *v;
    json_object_foreach(set, k, v) json_object_set(root, k, v);

    json_t *mo = json_object();
    json_object_set_new(mo, "name", json_string(m->name));
    json_object_set_new(mo, "source", json_string(m->from_gguf ? "gguf" : "catalog"));
    if (m->facts) json_object_set_new(mo, "hf", json_string(m->facts->hf));
    json_object_set_new(mo, "arch", json_string(m->arch));
    json_object_set_new(mo, "n_params", json_integer((json_int_t)m->n_params));
    json_object_set_new(mo, "n_tensors", json_integer((json_int_t)m->n_tensors));
    json_object_set_new(mo, "n_layer", json_integer(m->n_layer));
    json_object_set_new(mo, "n_embd", json_integer(m->n_embd));
    json_object_set_new(mo, "n_head", json_integer(m->n_head));
    json_object_set_new(mo, "n_head_kv", json_integer(m->n_head_kv));
    json_object_set_new(mo, "head_dim", json_integer(m->head_dim_k));
    json_object_set_new(mo, "n_ff", json_integer(m->n_ff));
    json_object_set_new(mo, "n_vocab", json_integer(m->n_vocab));
    json_object_set_new(mo, "n_ctx_train", json_integer(m->n_ctx_train));
    json_object_set_new(mo, "tied_embeddings", json_boolean(m->tied));
    json_object_set_new(root, "model", mo);

    json_t *ma = json_object();
    json_object_set_new(ma, "name", json_string(mach->name));
    json_object_set_new(ma, "kind", json_string(kind_name(mach->kind)));
    json_object_set_new(ma, "mem_bytes", json_integer((json_int_t)mach->mem_bytes));
    json_object_set_new(ma, "bandwidth_gbs", json_real(mach->bandwidth_gbs));
    json_object_set_new(root, "machine", ma);

    json_t *th = json_object();
    json_object_set_new(th, "comfortable_max_pct", json_integer(QFIT_PLAN_COMFORT_PCT));
    json_object_set_new(th, "tight_max_pct", json_integer(100));
    json_object_set_new(root, "verdict_thresholds", th);

    json_t *fx = json_array();
    for (size_t i = 0; i < n_fixes; i++) {
        json_t *f = json_object();
        json_object_set_new(f, "fix", json_string(fixes[i].what));
        json_object_set_new(f, "command", json_string(fixes[i].cmd));
        json_object_set_new(f, "saves_bytes", json_integer((json_int_t)fixes[i].saves_bytes));
        json_object_set_new(f, "new_total_bytes", json_integer((json_int_t)fixes[i].new_total_bytes));
        json_object_set_new(f, "new_verdict", json_string(qfit_plan_verdict_name(fixes[i].new_verdict)));
        json_array_append_new(fx, f);
    }
    json_object_set_new(root, "recommendations", fx);
    if (fit_requested) json_object_set_new(root, "fit", fit ? result_obj(fit) : json_null());

    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    return s;
}
