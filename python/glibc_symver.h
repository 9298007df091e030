/*
 * The wheel's glibc floor: forced into every C file of a wheel build (-include in
 * meson.build, -Dpython_wheel=true on a glibc host only), it binds the few glibc
 * functions whose newest symbol version is above manylinux2014's glibc 2.17 to their
 * oldest version instead.  These are the same functions under two names:
 *
 *   pthread_create, pthread_join, pthread_once    GLIBC_2.34  (moved from libpthread)
 *   pthread_setname_np                            GLIBC_2.34
 *   pthread_sigmask                               GLIBC_2.32  (moved from libpthread)
 *   exp, log                                      GLIBC_2.29  (the same functions
 *                                                 without the SVID error wrapper; dafl
 *                                                 compiles with -fno-math-errno)
 *
 * On a glibc older than 2.34 the pthread functions live in libpthread.so.0, which the
 * extension therefore lists as needed (python/dafl/meson.build).  A reference that a
 * file does not make is not created by these directives.
 *
 * It includes nothing, so that no file's feature-test macros are decided here.
 */
#ifndef DAFL_GLIBC_SYMVER_H
#define DAFL_GLIBC_SYMVER_H

#if defined(__x86_64__)
#define DAFL_GLIBC_BASE "GLIBC_2.2.5"
#define DAFL_GLIBC_SETNAME "GLIBC_2.12"
#elif defined(__aarch64__)
#define DAFL_GLIBC_BASE "GLIBC_2.17"
#define DAFL_GLIBC_SETNAME "GLIBC_2.17"
#endif

#ifdef DAFL_GLIBC_BASE
__asm__(".symver pthread_create, pthread_create@" DAFL_GLIBC_BASE);
__asm__(".symver pthread_join, pthread_join@" DAFL_GLIBC_BASE);
__asm__(".symver pthread_once, pthread_once@" DAFL_GLIBC_BASE);
__asm__(".symver pthread_sigmask, pthread_sigmask@" DAFL_GLIBC_BASE);
__asm__(".symver pthread_setname_np, pthread_setname_np@" DAFL_GLIBC_SETNAME);
__asm__(".symver exp, exp@" DAFL_GLIBC_BASE);
__asm__(".symver log, log@" DAFL_GLIBC_BASE);
#endif

#endif
