/* The devices a context can run on (qfit/backend.h) and the backend each one uses. */
#include "qfit/backend.h"

#include <stdio.h>
#include <string.h>

#include "model/model_internal.h"
#include "platform/platform.h"

typedef struct {
    const char *name, *description;
    const qfit_backend *(*backend_for)(const qfit_model *m);
} device_entry;

/* the CPU backend of a model: the post-norm layer (encoders) has one of its own */
static const qfit_backend *cpu_for(const qfit_model *m)
{
    return m->recipes[0].block == QFIT_BLOCK_POST_NORM ? &qfit_backend_cpu_encoder : &qfit_backend_cpu;
}

static const qfit_backend *ref_for(const qfit_model *m)
{
    (void)m;
    return &qfit_backend_ref;
}

static const device_entry devices[] = {
    { "cpu", "CPU: the ISA kernels on the context's thread pool", cpu_for },
    { "ref", "scalar reference: plain loops in double, the oracle of the other backends (slow)", ref_for },
};
#define N_DEVICES ((int)(sizeof devices / sizeof devices[0]))

int qfit_device_count(void) { return N_DEVICES; }

int qfit_device_get(int i, qfit_device_info *out)
{
    if (i < 0 || i >= N_DEVICES || !out) return -1;
    out->name = devices[i].name;
    out->description = devices[i].description;
    out->host_memory = true;   /* both run on host memory */
    out->mem_total = qfit_sys_ram_bytes();
    out->mem_free = qfit_sys_avail_bytes();
    return 0;
}

int qfit_device_find(const char *name)
{
    if (!name || !*name) return 0;
    for (int i = 0; i < N_DEVICES; i++)
        if (!strcmp(devices[i].name, name)) return i;
    return -1;
}

const char *qfit_device_names(void) { return "cpu, ref"; }

const qfit_backend *qfit_backend_for(const char *device, const qfit_model *m, char *err, size_t err_len)
{
    const int i = qfit_device_find(device);
    if (i < 0) {
        snprintf(err, err_len, "unknown device \"%s\" (devices: %s)", device, qfit_device_names());
        return NULL;
    }
    const qfit_backend *be = devices[i].backend_for(m);
    if (be->supports && be->supports(m, err, err_len) != 0) return NULL;
    return be;
}

int qfit_device_supports(const char *name, const qfit_model *m, char *err, size_t err_len)
{
    char dummy[8];
    if (!err || !err_len) { err = dummy; err_len = sizeof dummy; }
    if (!m) { snprintf(err, err_len, "no model"); return -1; }
    return qfit_backend_for(name, m, err, err_len) ? 0 : -1;
}
