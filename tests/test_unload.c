/*
 * dlclose() after the pool started: the library's workers must be gone before its code
 * is unmapped (a worker left running there dies of SIGSEGV, usually within a few of
 * these rounds).  Each round loads libdafl.so (the path is argv[1]), makes pooled calls
 * on 4 threads, unloads it and keeps the process busy for a moment, as a plugin host or
 * Python's ctypes would.  Exit status 0 when every round survived and the library was
 * really unmapped each time.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dafl.h"

typedef dafl_status (*set_threads_fn)(int);
typedef dafl_status (*penalty_focal_fn)(const float *, const float *, size_t,
                                        const dafl_penalty_focal_params *, float *, float *,
                                        dafl_stats *);

/* Whether any mapping of this process comes from `path`. */
static int is_mapped(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return -1;
    char line[4096];
    int found = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, base))
            found = 1;
    fclose(f);
    return found;
}

static void busy_wait_ms(int ms)
{
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    do
        clock_gettime(CLOCK_MONOTONIC, &now);
    while ((now.tv_sec - start.tv_sec) * 1000.0 + (now.tv_nsec - start.tv_nsec) / 1e6 < ms);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s path/to/libdafl.so\n", argv[0]);
        return 2;
    }
    enum { ROUNDS = 20, LEN = 100000 };
    float *x = malloc(LEN * sizeof(float)), *y = malloc(LEN * sizeof(float));
    float *g = malloc(LEN * sizeof(float));
    if (!x || !y || !g)
        return 2;
    for (int i = 0; i < LEN; i++) {
        x[i] = (float)(i % 200) / 10.0f - 10.0f;
        y[i] = i % 97 == 0 ? 1.0f : (float)(i % 13) / 13.0f;
    }
    float first = 0;
    for (int round = 0; round < ROUNDS; round++) {
        void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            fprintf(stderr, "dlopen: %s\n", dlerror());
            return 1;
        }
        set_threads_fn set_threads = (set_threads_fn)dlsym(lib, "dafl_set_threads");
        penalty_focal_fn penalty_focal = (penalty_focal_fn)dlsym(lib, "dafl_penalty_focal");
        if (!set_threads || !penalty_focal) {
            fprintf(stderr, "dlsym: %s\n", dlerror());
            return 1;
        }
        set_threads(4);
        float loss = 0;
        for (int call = 0; call < 3; call++)
            if (penalty_focal(x, y, LEN, NULL, &loss, g, NULL) != DAFL_OK)
                return 1;
        if (round == 0)
            first = loss;
        else if (memcmp(&loss, &first, sizeof loss) != 0) {
            fprintf(stderr, "round %d: loss %a, first round %a\n", round, (double)loss,
                    (double)first);
            return 1;
        }
        if (dlclose(lib) != 0) {
            fprintf(stderr, "dlclose: %s\n", dlerror());
            return 1;
        }
        if (is_mapped(argv[1]) == 1) {
            fprintf(stderr, "round %d: the library is still mapped after dlclose\n", round);
            return 1;
        }
        busy_wait_ms(5); /* a worker still running would now execute unmapped code */
    }
    printf("%d rounds of dlopen, pooled calls on 4 threads, dlclose: no crash, the "
           "library unmapped each time\n", ROUNDS);
    free(x);
    free(y);
    free(g);
    return 0;
}
