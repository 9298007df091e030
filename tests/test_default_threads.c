/*
 * The default thread count, read once at the first call that asks (so each case is its
 * own process, run by meson with its own environment):
 *
 *   test_default_threads affinity      restricts itself to one CPU first: expects 1
 *   test_default_threads expect N      expects N (meson sets DAFL_THREADS for it)
 *   test_default_threads online        expects the affinity mask's CPU count (meson
 *                                      sets an unusable DAFL_THREADS: it is ignored)
 */
#define _GNU_SOURCE /* sched_setaffinity, CPU_COUNT */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    int expected;
    if (strcmp(argv[1], "affinity") == 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
        if (sched_setaffinity(0, sizeof one, &one) != 0) {
            perror("sched_setaffinity");
            return 2;
        }
        expected = 1;
    } else if (strcmp(argv[1], "expect") == 0 && argc == 3) {
        expected = atoi(argv[2]);
    } else if (strcmp(argv[1], "online") == 0) {
        cpu_set_t set;
        if (sched_getaffinity(0, sizeof set, &set) != 0)
            return 2;
        expected = CPU_COUNT(&set) < DAFL_MAX_THREADS ? CPU_COUNT(&set) : DAFL_MAX_THREADS;
    } else {
        return 2;
    }
    const char *env = getenv("DAFL_THREADS");
    int got = dafl_threads();
    printf("DAFL_THREADS=%s, %s: dafl_threads() = %d, expected %d\n", env ? env : "(unset)",
           argv[1], got, expected);
    /* a cgroup CPU quota may lower the count below the CPUs (never raise it) */
    if (strcmp(argv[1], "expect") != 0 && got < expected && got >= 1) {
        printf("(a cgroup CPU quota of %d applies)\n", got);
        return 0;
    }
    return got == expected ? 0 : 1;
}
