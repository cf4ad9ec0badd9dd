/* Machines: named profiles, detection of this machine, explicit budgets, and
 * the budget / reserve rules.
 *
 * Budget (memory the model, its KV cache and buffers may use):
 *   CPU     all of RAM; the OS reserve below is counted as overhead.
 *   Apple   75% of unified memory. Metal lets one process keep about that much
 *           resident for the GPU: macOS's default recommendedMaxWorkingSetSize
 *           is roughly 2/3 of RAM on small machines and about 3/4 on large ones
 *           (it can be raised with `sudo sysctl iogpu.wired_limit_mb=N`).
 *           qfit uses 75% for every Apple machine, as a single stated rule; the
 *           remaining 25% is the OS's, so no further OS reserve is counted.
 *   GPU     the card's VRAM; the driver / CUDA context reserve is overhead.
 *   custom  --mem SIZE: exactly what the user says is free for qfit.
 * Overhead = runtime reserve (256 MiB: program, tokenizer tables, thread
 * stacks, allocator slack) + OS / driver reserve:
 *   CPU     10% of RAM, at least 1 GiB and at most 4 GiB
 *   GPU     512 MiB (CUDA context and display)
 *   Apple, custom: 0
 *
 * Bandwidths are the vendors' published peak figures (GB/s = 10^9 B/s). */
#include "qfit/plan.h"
#include "qfit/kernels.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "platform/platform.h"

#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

static const qfit_plan_machine machines[] = {
    /* Apple silicon: unified memory, bandwidth per Apple's spec sheets */
    { "m1-8gb",        "Apple M1, 8 GB unified memory (68 GB/s)",              QFIT_MACHINE_APPLE, 8 * GiB,   68.25, 8 },
    { "m1-pro-16gb",   "Apple M1 Pro, 16 GB unified memory (200 GB/s)",        QFIT_MACHINE_APPLE, 16 * GiB,  200, 10 },
    { "m1-max-32gb",   "Apple M1 Max, 32 GB unified memory (400 GB/s)",        QFIT_MACHINE_APPLE, 32 * GiB,  400, 10 },
    { "m1-max-64gb",   "Apple M1 Max, 64 GB unified memory (400 GB/s)",        QFIT_MACHINE_APPLE, 64 * GiB,  400, 10 },
    { "m2-16gb",       "Apple M2, 16 GB unified memory (100 GB/s)",            QFIT_MACHINE_APPLE, 16 * GiB,  100, 8 },
    { "m2-max-64gb",   "Apple M2 Max, 64 GB unified memory (400 GB/s)",        QFIT_MACHINE_APPLE, 64 * GiB,  400, 12 },
    { "m2-ultra-192gb","Apple M2 Ultra, 192 GB unified memory (800 GB/s)",     QFIT_MACHINE_APPLE, 192 * GiB, 800, 24 },
    { "m3-pro-36gb",   "Apple M3 Pro, 36 GB unified memory (150 GB/s)",        QFIT_MACHINE_APPLE, 36 * GiB,  150, 12 },
    { "m3-max-128gb",  "Apple M3 Max (16-core CPU), 128 GB unified memory (400 GB/s)", QFIT_MACHINE_APPLE, 128 * GiB, 400, 16 },
    { "m4-pro-48gb",   "Apple M4 Pro, 48 GB unified memory (273 GB/s)",        QFIT_MACHINE_APPLE, 48 * GiB,  273, 14 },
    { "m4-max-128gb",  "Apple M4 Max (16-core CPU), 128 GB unified memory (546 GB/s)", QFIT_MACHINE_APPLE, 128 * GiB, 546, 16 },
    /* discrete GPUs: VRAM and its bandwidth */
    { "rtx-3060-12gb", "NVIDIA RTX 3060, 12 GB GDDR6 (360 GB/s)",              QFIT_MACHINE_GPU,   12 * GiB,  360, 0 },
    { "rtx-3090-24gb", "NVIDIA RTX 3090, 24 GB GDDR6X (936 GB/s)",             QFIT_MACHINE_GPU,   24 * GiB,  936, 0 },
    { "rtx-4060ti-16gb","NVIDIA RTX 4060 Ti 16 GB, GDDR6 (288 GB/s)",          QFIT_MACHINE_GPU,   16 * GiB,  288, 0 },
    { "rtx-4090-24gb", "NVIDIA RTX 4090, 24 GB GDDR6X (1008 GB/s)",            QFIT_MACHINE_GPU,   24 * GiB,  1008, 0 },
    { "rtx-5090-32gb", "NVIDIA RTX 5090, 32 GB GDDR7 (1792 GB/s)",             QFIT_MACHINE_GPU,   32 * GiB,  1792, 0 },
    /* CPU-only PCs: dual-channel DDR5-4800 (2 x 38.4 = 76.8 GB/s peak); use 64 GB/s as a
     * typical mixed DDR4-3200 (51.2) / DDR5 figure */
    { "cpu-8gb",       "CPU only, 8 GB RAM, dual-channel DDR4/DDR5 (~64 GB/s)", QFIT_MACHINE_CPU,  8 * GiB,   64, 8 },
    { "cpu-16gb",      "CPU only, 16 GB RAM, dual-channel DDR4/DDR5 (~64 GB/s)", QFIT_MACHINE_CPU, 16 * GiB,  64, 8 },
    { "cpu-32gb",      "CPU only, 32 GB RAM, dual-channel DDR4/DDR5 (~64 GB/s)", QFIT_MACHINE_CPU, 32 * GiB,  64, 8 },
    { "cpu-64gb",      "CPU only, 64 GB RAM, dual-channel DDR4/DDR5 (~64 GB/s)", QFIT_MACHINE_CPU, 64 * GiB,  64, 16 },
    { "cpu-128gb",     "CPU only, 128 GB RAM, dual-channel DDR5 (~77 GB/s)",     QFIT_MACHINE_CPU, 128 * GiB, 76.8, 16 },
};

size_t qfit_plan_machine_count(void) { return sizeof machines / sizeof machines[0]; }

const qfit_plan_machine *qfit_plan_machine_at(size_t i)
{
    return i < qfit_plan_machine_count() ? &machines[i] : NULL;
}

const qfit_plan_machine *qfit_plan_machine_find(const char *name)
{
    if (!name) return NULL;
    for (size_t i = 0; i < qfit_plan_machine_count(); i++)
        if (strcasecmp(machines[i].name, name) == 0) return &machines[i];
    return NULL;
}

void qfit_plan_machine_detect(qfit_plan_machine *out)
{
    static char desc[256];
    uint64_t ram = qfit_sys_ram_bytes();
    long cores = qfit_sys_perf_cpu_count();
    const qfit_cpu_features *ft = qfit_cpu_get_features();
    char feats[96] = "";
    if (ft) {
        snprintf(feats, sizeof feats, "%s%s%s%s%s",
                 ft->avx512f ? " avx512" : "", ft->avx512vnni ? " vnni" : "",
                 ft->avx2 ? " avx2" : "", ft->neon ? " neon" : "", ft->dotprod ? " dotprod" : "");
    }
    snprintf(desc, sizeof desc, "this machine: %.1f GiB RAM, %ld cores,%s%s; bandwidth assumed ~64 GB/s "
             "(typical dual-channel; not measured)",
             (double)ram / (double)GiB, cores > 0 ? cores : 1L, feats[0] ? " CPU features" : "", feats);
    memset(out, 0, sizeof *out);
    out->name = "this";
    out->desc = desc;
    out->kind = QFIT_MACHINE_CPU;
    out->mem_bytes = ram;
    out->bandwidth_gbs = 64;
    out->cores = cores > 0 ? (int)cores : 1;
}

void qfit_plan_machine_custom(uint64_t bytes, qfit_plan_machine *out)
{
    memset(out, 0, sizeof *out);
    out->name = "custom";
    out->desc = "explicit memory budget (--mem); bandwidth assumed ~64 GB/s";
    out->kind = QFIT_MACHINE_CUSTOM;
    out->mem_bytes = bytes;
    out->bandwidth_gbs = 64;
}

uint64_t qfit_plan_budget_bytes(const qfit_plan_machine *m)
{
    if (!m) return 0;
    if (m->kind == QFIT_MACHINE_APPLE) return m->mem_bytes / 4 * 3;   /* 75% GPU-usable share */
    return m->mem_bytes;
}

uint64_t qfit_plan_os_reserve_bytes(const qfit_plan_machine *m)
{
    if (!m) return 0;
    switch (m->kind) {
    case QFIT_MACHINE_CPU: {
        uint64_t r = m->mem_bytes / 10;
        if (r < GiB) r = GiB;
        if (r > 4 * GiB) r = 4 * GiB;
        return r;
    }
    case QFIT_MACHINE_GPU: return 512 * MiB;
    case QFIT_MACHINE_APPLE:
    case QFIT_MACHINE_CUSTOM: return 0;
    }
    return 0;
}

/* The fixed part of the qfit process, the same on every machine kind: measured as
 * the peak RSS of the release binary less everything the planner counts by name
 * (bench/plan-memory, tests/test_plan.c). */
uint64_t qfit_plan_runtime_reserve_bytes(const qfit_plan_machine *m)
{
    (void)m;
    return QFIT_PLAN_RUNTIME_BASE_BYTES;
}
