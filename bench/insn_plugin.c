/* A qemu TCG plugin for bench/neon-count: counts the guest instructions executed
 * between two marker functions and writes one count per marker pair.
 *
 *   qemu-aarch64 -plugin build/neon-count/insn_plugin.so,begin=0x...,end=0x...,out=FILE prog ...
 *
 * Every translated block adds its instruction count to one counter when it starts
 * (an inline add); the block that starts at `begin` snapshots the counter and the one
 * that starts at `end` writes the difference to FILE. Exact for code that runs its
 * blocks to the end (no faults in the middle of a block: true of the kernels) and
 * whose instructions do not cross a page: qemu 7.2 ends a block before an x86
 * instruction that does, and the count it gives the plugin for that block is one too
 * high, so bench/neon-count runs x86 guests with -singlestep (one instruction per
 * block). The guest must be single-threaded (one counter, no atomics).
 *
 * Debian's qemu-user ships no plugins and no plugin header, so the few declarations
 * of qemu's plugin API (version 1: qemu 5.2 to 8.x) used here are written out below.
 * A qemu whose API is newer refuses to load the plugin (version check or a missing
 * symbol), which bench/neon-count reports; its --method log then still counts (from
 * the execution log, slowly). */
#include <inttypes.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- qemu plugin API, version 1 (the subset used) ---- */
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct {
    const char *target_name;
    struct {
        int min, cur;
    } version;
    bool system_emulation;
} nc_qemu_info;
typedef void (*nc_tb_trans_cb)(qemu_plugin_id_t id, struct qemu_plugin_tb *tb);
typedef void (*nc_vcpu_udata_cb)(unsigned int vcpu_index, void *userdata);
typedef void (*nc_udata_cb)(qemu_plugin_id_t id, void *userdata);
enum { NC_CB_NO_REGS = 0 };         /* enum qemu_plugin_cb_flags */
enum { NC_INLINE_ADD_U64 = 0 };     /* enum qemu_plugin_op */
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t id, nc_tb_trans_cb cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *tb, nc_vcpu_udata_cb cb, int flags, void *userdata);
void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *tb, int op, void *ptr, uint64_t imm);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *tb);
uint64_t qemu_plugin_tb_vaddr(const struct qemu_plugin_tb *tb);
void qemu_plugin_register_atexit_cb(qemu_plugin_id_t id, nc_udata_cb cb, void *userdata);

#define NC_EXPORT __attribute__((visibility("default")))
NC_EXPORT extern int qemu_plugin_version;
NC_EXPORT int qemu_plugin_version = 1;
NC_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const nc_qemu_info *info, int argc, char **argv);

/* ---- the counter ---- */
static uint64_t g_insns, g_at_begin, g_begin, g_end;
static bool g_open;
static unsigned long g_pairs, g_unpaired;
static FILE *g_out;

static void on_begin(unsigned int vcpu, void *u)
{
    if (g_open) g_unpaired++;
    g_at_begin = g_insns;
    g_open = true;
}

static void on_end(unsigned int vcpu, void *u)
{
    if (!g_open) {
        g_unpaired++;
        return;
    }
    fprintf(g_out, "%" PRIu64 "\n", g_insns - g_at_begin);
    g_open = false;
    g_pairs++;
}

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    const uint64_t pc = qemu_plugin_tb_vaddr(tb);
    /* the marker callbacks first, then the block's own add: a marker block's
     * instructions count after begin and not before end, as every block does */
    if (pc == g_begin) qemu_plugin_register_vcpu_tb_exec_cb(tb, on_begin, NC_CB_NO_REGS, NULL);
    if (pc == g_end) qemu_plugin_register_vcpu_tb_exec_cb(tb, on_end, NC_CB_NO_REGS, NULL);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, NC_INLINE_ADD_U64, &g_insns, qemu_plugin_tb_n_insns(tb));
}

static void at_exit_cb(qemu_plugin_id_t id, void *u)
{
    fprintf(g_out, "stats pairs=%lu unpaired=%lu total=%" PRIu64 "\n", g_pairs, g_unpaired + (g_open ? 1 : 0),
            g_insns);
    fclose(g_out);
}

NC_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const nc_qemu_info *info, int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "begin=", 6) == 0) g_begin = strtoull(argv[i] + 6, NULL, 0);
        else if (strncmp(argv[i], "end=", 4) == 0) g_end = strtoull(argv[i] + 4, NULL, 0);
        else if (strncmp(argv[i], "out=", 4) == 0) out = argv[i] + 4;
        else {
            fprintf(stderr, "insn_plugin: unknown argument %s (begin=ADDR,end=ADDR,out=FILE)\n", argv[i]);
            return 1;
        }
    }
    if (!g_begin || !g_end || g_begin == g_end || !out) {
        fprintf(stderr, "insn_plugin: needs begin=ADDR,end=ADDR (distinct) and out=FILE\n");
        return 1;
    }
    if (info->system_emulation) {
        fprintf(stderr, "insn_plugin: user-mode qemu only\n");
        return 1;
    }
    g_out = fopen(out, "w");
    if (!g_out) {
        fprintf(stderr, "insn_plugin: cannot write %s\n", out);
        return 1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_atexit_cb(id, at_exit_cb, NULL);
    return 0;
}
