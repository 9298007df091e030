/*
 * Run-time dispatch: one kernel table per ISA, one pointer to the active one.
 *
 * The pointer is filled once, under pthread_once, from the CPU's features and the
 * DAFL_ISA environment variable; dafl_set_isa() replaces it atomically.  A table is only
 * ever chosen when the CPU can run it, so forcing an ISA never reaches an illegal
 * instruction.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"
#include "kernels/kernel_api.h"

/* What the CPU needs for the avx512 table.  The test build -Davx512_emulation=true
 * compiles it for AVX2 + FMA on SIMDe (tests/avx512_emulation), so there any AVX2+FMA
 * CPU runs it; no other build defines DAFL_AVX512_EMULATION. */
#if defined(DAFL_AVX512_EMULATION)
#define AVX512_TABLE_NEEDS DAFL_CPU_AVX2
#else
#define AVX512_TABLE_NEEDS DAFL_CPU_AVX512
#endif

/* The best table for each ISA that this build contains and this CPU runs, or NULL. */
static const dafl_kernels *table_for(dafl_isa isa, unsigned cpu)
{
    switch (isa) {
    case DAFL_ISA_SCALAR:
#if defined(DAFL_HAVE_SCALAR_NOFMA)
        if (!(cpu & DAFL_CPU_FMA))
            return &dafl_kernels_scalar_nofma;
#endif
        return &dafl_kernels_scalar;
#if defined(DAFL_HAVE_AVX2)
    case DAFL_ISA_AVX2:
        return (cpu & DAFL_CPU_AVX2) ? &dafl_kernels_avx2 : NULL;
#endif
#if defined(DAFL_HAVE_AVX512)
    case DAFL_ISA_AVX512:
#if defined(DAFL_HAVE_AVX512_BF16)
        if (cpu & DAFL_CPU_AVX512_BF16) /* set only together with DAFL_CPU_AVX512 */
            return &dafl_kernels_avx512_bf16;
#endif
        return (cpu & AVX512_TABLE_NEEDS) ? &dafl_kernels_avx512 : NULL;
#endif
#if defined(DAFL_HAVE_NEON)
    case DAFL_ISA_NEON:
        return (cpu & DAFL_CPU_NEON) ? &dafl_kernels_neon : NULL;
#endif
    default:
        return NULL;
    }
}

static const dafl_kernels *best_table(unsigned cpu)
{
    static const dafl_isa preference[] = {DAFL_ISA_AVX512, DAFL_ISA_AVX2, DAFL_ISA_NEON};
    for (size_t i = 0; i < sizeof preference / sizeof preference[0]; i++) {
        const dafl_kernels *t = table_for(preference[i], cpu);
        if (t)
            return t;
    }
    return table_for(DAFL_ISA_SCALAR, cpu);
}

static _Atomic(const dafl_kernels *) active_table;
static unsigned cpu_features;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void initialise(void)
{
    cpu_features = dafl_cpu_flags();
    const dafl_kernels *chosen = best_table(cpu_features);
    const char *env = getenv("DAFL_ISA");
    if (env && *env && strcmp(env, "auto") != 0) {
        const dafl_kernels *wanted = NULL;
        for (int isa = DAFL_ISA_SCALAR; isa <= DAFL_ISA_NEON; isa++)
            if (strcmp(env, dafl_isa_name((dafl_isa)isa)) == 0)
                wanted = table_for((dafl_isa)isa, cpu_features);
        if (wanted)
            chosen = wanted;
        else
            fprintf(stderr, "dafl: DAFL_ISA=%s is unknown or not supported by this CPU; "
                            "using %s\n", env, chosen->name);
    }
    atomic_store(&active_table, chosen);
}

const dafl_kernels *dafl_active_kernels(void)
{
    pthread_once(&init_once, initialise);
    return atomic_load_explicit(&active_table, memory_order_acquire);
}

dafl_status dafl_set_isa(dafl_isa isa)
{
    pthread_once(&init_once, initialise);
    if ((int)isa < DAFL_ISA_AUTO || (int)isa > DAFL_ISA_NEON)
        return DAFL_ERR_INVALID_ENUM;
    const dafl_kernels *t = isa == DAFL_ISA_AUTO ? best_table(cpu_features)
                                                 : table_for(isa, cpu_features);
    if (!t)
        return DAFL_ERR_ISA_UNAVAILABLE;
    atomic_store_explicit(&active_table, t, memory_order_release);
    return DAFL_OK;
}

dafl_isa dafl_active_isa(void) { return dafl_active_kernels()->isa; }

int dafl_isa_available(dafl_isa isa)
{
    pthread_once(&init_once, initialise);
    if (isa == DAFL_ISA_AUTO)
        return 1;
    if ((int)isa < DAFL_ISA_SCALAR || (int)isa > DAFL_ISA_NEON)
        return 0;
    return table_for(isa, cpu_features) != NULL;
}

const char *dafl_isa_name(dafl_isa isa)
{
    switch (isa) {
    case DAFL_ISA_AUTO: return "auto";
    case DAFL_ISA_SCALAR: return "scalar";
    case DAFL_ISA_AVX2: return "avx2";
    case DAFL_ISA_AVX512: return "avx512";
    case DAFL_ISA_NEON: return "neon";
    }
    return "unknown";
}
