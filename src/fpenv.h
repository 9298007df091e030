/*
 * The floating-point environment dafl computes in, whatever the caller's.
 *
 * Every result of dafl is specified bit for bit (dafl.h, "Determinism"), and that needs
 * IEEE arithmetic as C assumes it: round to nearest even, subnormals kept (no
 * flush-to-zero, no denormals-are-zero) and every exception masked, so that an overflow
 * inside a formula whose limit is finite gives inf and is caught, rather than a trap.
 * A caller may have changed any of these (fesetround, FTZ/DAZ set by -ffast-math startup
 * code or a DSP library, feenableexcept in a debugging session), so every public entry
 * point that does floating-point arithmetic starts with
 *
 *     DAFL_FP_ENVIRONMENT();
 *
 * which saves the caller's control and status registers, installs dafl's, and restores
 * the caller's when the function returns (a cleanup attribute, so every return path is
 * covered).  dafl's own pool threads install dafl's environment once when they start,
 * and a host's parallel-for threads get it around every range they run (parallel.c).
 *
 * The cost is two control-register writes per call (a few nanoseconds: docs/threads.md),
 * invisible next to even a 4K-element call.  Restoring the caller's status register also
 * means dafl leaves the caller's sticky exception flags exactly as they were.
 */
#ifndef DAFL_FPENV_H
#define DAFL_FPENV_H

#include <stdint.h>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>

/* MXCSR holds both control and status.  0x1F80: every exception masked, round to
 * nearest, FTZ and DAZ off, no flag set (the power-on value). */
#define DAFL_MXCSR_DEFAULT 0x1F80u

typedef struct dafl_fpenv {
    unsigned int mxcsr;
} dafl_fpenv;

static inline dafl_fpenv dafl_fpenv_enter(void)
{
    dafl_fpenv saved = {_mm_getcsr()};
    _mm_setcsr(DAFL_MXCSR_DEFAULT);
    return saved;
}

static inline void dafl_fpenv_leave(const dafl_fpenv *saved)
{
    _mm_setcsr(saved->mxcsr);
}

#elif defined(__aarch64__)

/* FPCR: rounding mode, FZ, FZ16, DN, AHP and the trap enables; 0 is IEEE round to
 * nearest with every trap disabled.  FPSR holds the sticky flags. */
typedef struct dafl_fpenv {
    uint64_t fpcr, fpsr;
} dafl_fpenv;

static inline dafl_fpenv dafl_fpenv_enter(void)
{
    dafl_fpenv saved;
    __asm__ volatile("mrs %0, fpcr" : "=r"(saved.fpcr));
    __asm__ volatile("mrs %0, fpsr" : "=r"(saved.fpsr));
    __asm__ volatile("msr fpcr, %0" : : "r"((uint64_t)0));
    return saved;
}

static inline void dafl_fpenv_leave(const dafl_fpenv *saved)
{
    __asm__ volatile("msr fpsr, %0" : : "r"(saved->fpsr));
    __asm__ volatile("msr fpcr, %0" : : "r"(saved->fpcr));
}

#else
#include <fenv.h>

typedef struct dafl_fpenv {
    fenv_t env;
} dafl_fpenv;

static inline dafl_fpenv dafl_fpenv_enter(void)
{
    dafl_fpenv saved;
    feholdexcept(&saved.env); /* saves, clears the flags, masks every trap */
    fesetenv(FE_DFL_ENV);
    return saved;
}

static inline void dafl_fpenv_leave(const dafl_fpenv *saved)
{
    fesetenv(&saved->env);
}
#endif

/* Installs dafl's environment for the rest of the enclosing block; the caller's comes
 * back when the block is left, by any path. */
#define DAFL_FP_ENVIRONMENT()                                                              \
    dafl_fpenv dafl_fpenv_saved_ __attribute__((cleanup(dafl_fpenv_leave), unused)) =     \
        dafl_fpenv_enter()

#endif
