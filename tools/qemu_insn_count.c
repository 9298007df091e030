/*
 * A QEMU TCG plugin that counts the guest instructions executed and prints the total at
 * exit (with -d plugin), for instruction counts of the AArch64 kernels under qemu-user.
 * Debian packages no plugin header, so the few functions of QEMU's plugin API (version 1,
 * QEMU 7.2) it calls are declared here.
 *   gcc -shared -fPIC -O2 -o qemu_insn_count.so tools/qemu_insn_count.c
 *   qemu-aarch64 -d plugin -plugin ./qemu_insn_count.so PROGRAM ARGS...
 */
#include <stdint.h>
#include <stdio.h>
#include <stddef.h>
typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_op { QEMU_PLUGIN_INLINE_ADD_U64 };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(qemu_plugin_id_t, void *);
extern void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
extern size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
extern void qemu_plugin_register_vcpu_tb_exec_inline(struct qemu_plugin_tb *, enum qemu_plugin_op, void *, uint64_t);
extern void qemu_plugin_register_atexit_cb(qemu_plugin_id_t, udata_cb, void *);
extern void qemu_plugin_outs(const char *);
__attribute__((visibility("default"))) int qemu_plugin_version = 1;
static uint64_t insns;
static void trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    (void)id; qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &insns, qemu_plugin_tb_n_insns(tb)); }
static void done(qemu_plugin_id_t id, void *p) { (void)id; (void)p; char b[64]; snprintf(b, sizeof b, "guest instructions: %llu\n", (unsigned long long)insns); qemu_plugin_outs(b); }
__attribute__((visibility("default"))) int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    (void)info; (void)argc; (void)argv; qemu_plugin_register_vcpu_tb_trans_cb(id, trans); qemu_plugin_register_atexit_cb(id, done, NULL); return 0; }
