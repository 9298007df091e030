/*
 * dafl's thread pool and the switch to a host's parallel-for.
 *
 * The pool
 *   Workers are started on the first call that wants them.  Each has its own mailbox: a
 *   call hands its job only to the workers it uses (workers 0 .. threads-2) and wakes only
 *   those, so a call's cost depends on the threads it uses, never on the most ever used.
 *   One call at a time uses the pool (a try-acquire flag); a call that finds it busy runs
 *   on its own thread, which keeps concurrent host threads safe and never makes one call
 *   wait for another.  Work is handed out in chunks from an atomic counter, so a slow
 *   thread does not hold up the others.  After a job, a worker checks its mailbox for a
 *   short while (a training loop calls again within microseconds, and waking a sleeping
 *   thread costs tens of microseconds on a virtual machine) and then sleeps on its own
 *   condition variable.
 *
 *   Why this is race-free: a job lives on the caller's stack.  Its fields are written
 *   before the release that bumps a worker's ticket and read only after the acquire that
 *   sees it; each participant decrements the job's `running` count exactly once, after
 *   its last use of the job (acq_rel), and the caller returns only after it has read 0
 *   (acquire).  A worker's mailbox is written only while that worker is idle: the next
 *   call posts only after the previous call returned, which was after every participant
 *   had decremented.
 *
 * Processes and unloading
 *   fork(): the child has the parent's memory but none of its worker threads.  An
 *   atfork child handler forgets the parent's pool (its memory is freed; the workers'
 *   stacks are lost, as with every threaded library), so the child's first large call
 *   starts a pool of its own and gives the same bits.
 *   Unloading (dlclose) runs the library's destructor, which stops and joins every
 *   worker before the code is unmapped; dafl_stop_threads() does the same on request
 *   (leak checkers, embedders).  Joining was chosen over keeping the library mapped
 *   (-z nodelete) so that a plugin host can really unload dafl, and so that no dafl
 *   thread outlives its last user.
 *
 * The host's parallel-for
 *   dafl does not trust it: every range it is given is checked against [0, count), every
 *   item is claimed exactly once (an atomic flag per item), and items the host never ran
 *   are run on the calling thread after it returns.  The result is therefore complete and
 *   correct even with a broken host, and the call reports DAFL_ERR_PARALLEL_FOR.
 */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "parallel.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sched.h>
#endif

#include "fpenv.h"

#define CHUNKS_PER_THREAD 4

/* ---- the thread count ---------------------------------------------------------------- */

static atomic_int configured_threads; /* 0: the default */
static pthread_once_t default_once = PTHREAD_ONCE_INIT;
static int default_thread_count = 1;

static int clamp_threads(long n)
{
    return n < 1 ? 1 : n > DAFL_MAX_THREADS ? DAFL_MAX_THREADS : (int)n;
}

#ifdef __linux__
/* The CPU quota of one cgroup directory, rounded up to whole CPUs; 0 when unlimited or
 * unreadable.  cgroup v2 writes "max 100000" or "<quota> <period>" to cpu.max; v1 has
 * cpu.cfs_quota_us (-1 when unlimited) and cpu.cfs_period_us. */
static long cgroup_quota_cpus(const char *dir, int v2)
{
    char path[4200];
    long long quota = -1, period = 0;
    FILE *f;
    if (v2) {
        if (snprintf(path, sizeof path, "%s/cpu.max", dir) >= (int)sizeof path)
            return 0;
        if (!(f = fopen(path, "re")))
            return 0;
        char first[32] = "";
        if (fscanf(f, "%31s %lld", first, &period) == 2 && strcmp(first, "max") != 0)
            quota = strtoll(first, NULL, 10);
        fclose(f);
    } else {
        if (snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", dir) >= (int)sizeof path)
            return 0;
        if (!(f = fopen(path, "re")))
            return 0;
        if (fscanf(f, "%lld", &quota) != 1)
            quota = -1;
        fclose(f);
        if (snprintf(path, sizeof path, "%s/cpu.cfs_period_us", dir) >= (int)sizeof path)
            return 0;
        if (!(f = fopen(path, "re")))
            return 0;
        if (fscanf(f, "%lld", &period) != 1)
            period = 0;
        fclose(f);
    }
    if (quota <= 0 || period <= 0)
        return 0;
    return (long)((quota + period - 1) / period);
}

/* The tightest CPU quota on the way from this process's cgroup up to the root (a limit
 * set on a parent applies to its children too); 0 when there is none. */
static long cgroup_cpu_limit(void)
{
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    char line[4096];
    long best = 0;
    while (fgets(line, sizeof line, f)) {
        /* "0::/path" (v2) or "N:cpu,cpuacct:/path" (v1) */
        char *colon1 = strchr(line, ':');
        char *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
        if (!colon2)
            continue;
        *colon2 = '\0';
        const char *controllers = colon1 + 1;
        char *rel = colon2 + 1;
        rel[strcspn(rel, "\n")] = '\0';
        int v2 = controllers[0] == '\0';
        const char *root = NULL;
        if (v2)
            root = "/sys/fs/cgroup";
        else if (strstr(controllers, "cpu") && !strstr(controllers, "cpuset"))
            root = "/sys/fs/cgroup/cpu,cpuacct";
        else if (strcmp(controllers, "cpu") == 0)
            root = "/sys/fs/cgroup/cpu";
        if (!root)
            continue;
        char dir[4200];
        for (;;) {
            if (snprintf(dir, sizeof dir, "%s%s", root, rel) >= (int)sizeof dir)
                break;
            long q = cgroup_quota_cpus(dir, v2);
            if (q > 0 && (best == 0 || q < best))
                best = q;
            char *slash = strrchr(rel, '/');
            if (!slash || slash == rel) {
                if (rel[0] == '/' && rel[1] != '\0') {
                    rel[1] = '\0'; /* the root itself, once */
                    continue;
                }
                break;
            }
            *slash = '\0';
        }
    }
    fclose(f);
    return best;
}
#endif

/* DAFL_THREADS if it holds a whole number in 1..DAFL_MAX_THREADS (anything else is
 * ignored); otherwise the CPUs this process may run on: its affinity mask (taskset, MPI
 * and torchrun rank binding), capped by its cgroup CPU quota (containers, cpu.max). */
static void find_default_threads(void)
{
    const char *env = getenv("DAFL_THREADS");
    if (env && *env) {
        char *end;
        errno = 0;
        long n = strtol(env, &end, 10);
        if (errno == 0 && *end == '\0' && n >= 1 && n <= DAFL_MAX_THREADS) {
            default_thread_count = (int)n;
            return;
        }
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
#ifdef __linux__
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        n = CPU_COUNT(&set);
    long quota = cgroup_cpu_limit();
    if (quota > 0 && quota < n)
        n = quota;
#endif
    default_thread_count = clamp_threads(n);
}

dafl_status dafl_set_threads(int threads)
{
    if (threads < 0 || threads > DAFL_MAX_THREADS)
        return DAFL_ERR_INVALID_PARAMETER;
    atomic_store(&configured_threads, threads);
    return DAFL_OK;
}

int dafl_threads(void)
{
    int n = atomic_load(&configured_threads);
    if (n)
        return n;
    pthread_once(&default_once, find_default_threads);
    return default_thread_count;
}

/* ---- the host's parallel-for ---------------------------------------------------------- */

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static dafl_parallel_for_fn host_parallel_for; /* guarded by host_lock */
static void *host_context;

dafl_status dafl_set_parallel_for(dafl_parallel_for_fn fn, void *host_ctx)
{
    pthread_mutex_lock(&host_lock);
    host_parallel_for = fn;
    host_context = fn ? host_ctx : NULL;
    pthread_mutex_unlock(&host_lock);
    return DAFL_OK;
}

/* What a host is handed instead of fn itself: bounds and once-only checks around it. */
typedef struct checked_split {
    dafl_range_fn fn;
    void *ctx;
    size_t count;
    atomic_uchar *claimed; /* one flag per item */
    atomic_bool broken;
} checked_split;

/* Runs the items of [begin, end) that nobody has run yet, in maximal runs; anything out
 * of [0, count) or already claimed marks the split broken and is skipped. */
static void checked_range(void *arg, size_t begin, size_t end)
{
    checked_split *s = arg;
    DAFL_FP_ENVIRONMENT(); /* a host thread may run in any environment */
    if (begin > end || end > s->count) {
        atomic_store_explicit(&s->broken, true, memory_order_relaxed);
        if (end > s->count)
            end = s->count;
        if (begin >= end)
            return;
    }
    size_t run = SIZE_MAX;
    for (size_t i = begin; i < end; i++) {
        if (atomic_exchange_explicit(&s->claimed[i], 1, memory_order_relaxed) == 0) {
            if (run == SIZE_MAX)
                run = i;
            continue;
        }
        atomic_store_explicit(&s->broken, true, memory_order_relaxed);
        if (run != SIZE_MAX)
            s->fn(s->ctx, run, i);
        run = SIZE_MAX;
    }
    if (run != SIZE_MAX)
        s->fn(s->ctx, run, end);
}

static dafl_status host_run(dafl_parallel_for_fn host, void *host_ctx, size_t count,
                            dafl_range_fn fn, void *ctx)
{
    enum { ON_STACK = 1024 };
    atomic_uchar stack_flags[ON_STACK];
    checked_split s = {.fn = fn, .ctx = ctx, .count = count, .claimed = stack_flags};
    if (count > ON_STACK && !(s.claimed = calloc(count, sizeof *s.claimed)))
        return DAFL_ERR_OUT_OF_MEMORY;
    for (size_t i = 0; count <= ON_STACK && i < count; i++)
        atomic_init(&s.claimed[i], 0);
    atomic_init(&s.broken, false);

    host(host_ctx, count, checked_range, &s);

    /* The host has returned: every range it ran is finished (its contract; a host that
     * returns early is beyond checking).  Run what it left out, here. */
    size_t run = SIZE_MAX;
    for (size_t i = 0; i <= count; i++) {
        int missing = i < count && atomic_load_explicit(&s.claimed[i], memory_order_acquire) == 0;
        if (missing && run == SIZE_MAX)
            run = i;
        if (!missing && run != SIZE_MAX) {
            atomic_store_explicit(&s.broken, true, memory_order_relaxed);
            fn(ctx, run, i);
            run = SIZE_MAX;
        }
    }
    bool broken = atomic_load(&s.broken);
    if (s.claimed != stack_flags)
        free(s.claimed);
    return broken ? DAFL_ERR_PARALLEL_FOR : DAFL_OK;
}

/* ---- the pool ------------------------------------------------------------------------- */

/* How often a thread checks an atomic, pausing between checks, before it sleeps: about
 * 40 microseconds on the machines measured (a pause is 40-140 cycles). */
#define SPIN_CHECKS 2000

typedef struct job {
    dafl_range_fn fn;
    void *ctx;
    size_t count, chunk, chunks;
    atomic_size_t next;  /* the next chunk to take               */
    atomic_int running;  /* participants that have not finished  */
} job;

typedef struct pool pool;

typedef struct worker {
    pool *owner;
    pthread_t thread;
    pthread_mutex_t lock; /* guards the sleep on `wake` */
    pthread_cond_t wake;
    atomic_ulong ticket;  /* bumped (release) when `posted` holds a new job */
    job *posted;
    atomic_bool stop;
} worker;

struct pool {
    pthread_mutex_t done_lock; /* guards the caller's sleep on `done` */
    pthread_cond_t done;
    int workers;               /* started so far; changed only by the pool's holder */
    worker w[DAFL_MAX_THREADS];
};

/* The pool, and who uses it.  `pool_busy` is taken with a try-acquire by the one call
 * that uses the pool; `the_pool` is read and written only by its holder.  `pool_admin`
 * orders a shutdown against fork (the prepare handler holds it); the pool's holder never
 * takes it, so a shutdown waiting for the holder cannot deadlock with it. */
static atomic_bool pool_busy;
static pool *the_pool;
static pthread_mutex_t pool_admin = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void run_chunks(job *j)
{
    for (;;) {
        size_t i = atomic_fetch_add_explicit(&j->next, 1, memory_order_relaxed);
        if (i >= j->chunks)
            return;
        size_t begin = i * j->chunk;
        size_t end = begin + j->chunk < j->count ? begin + j->chunk : j->count;
        j->fn(j->ctx, begin, end);
    }
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    pool *p = w->owner;
#ifdef __linux__
    pthread_setname_np(pthread_self(), "dafl-worker"); /* as top, ps and gdb show it */
#endif
    dafl_fpenv_enter(); /* this thread runs nothing but dafl: its environment, for good */
    unsigned long seen = 0;
    for (;;) {
        unsigned long t = atomic_load_explicit(&w->ticket, memory_order_acquire);
        for (int i = 0; i < SPIN_CHECKS && t == seen && !atomic_load(&w->stop); i++) {
            cpu_relax();
            t = atomic_load_explicit(&w->ticket, memory_order_acquire);
        }
        if (t == seen) {
            pthread_mutex_lock(&w->lock);
            while ((t = atomic_load_explicit(&w->ticket, memory_order_acquire)) == seen &&
                   !atomic_load(&w->stop))
                pthread_cond_wait(&w->wake, &w->lock);
            pthread_mutex_unlock(&w->lock);
        }
        if (t == seen) /* woken to stop, with no job pending */
            return NULL;
        seen = t;
        job *j = w->posted;
        run_chunks(j);
        if (atomic_fetch_sub_explicit(&j->running, 1, memory_order_acq_rel) == 1) {
            /* The last one out wakes the caller.  From here on `j` may be gone: only the
             * pool's own lock and condition variable are touched. */
            pthread_mutex_lock(&p->done_lock);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->done_lock);
        }
    }
}

/* Stops and joins every worker of a pool no call is using, and frees it. */
static void pool_destroy(pool *p)
{
    for (int i = 0; i < p->workers; i++) {
        worker *w = &p->w[i];
        pthread_mutex_lock(&w->lock);
        atomic_store(&w->stop, true);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }
    for (int i = 0; i < p->workers; i++) {
        pthread_join(p->w[i].thread, NULL);
        pthread_mutex_destroy(&p->w[i].lock);
        pthread_cond_destroy(&p->w[i].wake);
    }
    pthread_mutex_destroy(&p->done_lock);
    pthread_cond_destroy(&p->done);
    free(p);
}

static void before_fork(void)
{
    pthread_mutex_lock(&pool_admin);
    pthread_mutex_lock(&host_lock);
}

static void after_fork_in_parent(void)
{
    pthread_mutex_unlock(&host_lock);
    pthread_mutex_unlock(&pool_admin);
}

/* The child is single-threaded: the parent's workers do not exist in it.  Whatever call
 * of the parent was using the pool is not running here either. */
static void after_fork_in_child(void)
{
    free(the_pool); /* its locks and threads belong to the parent */
    the_pool = NULL;
    atomic_store(&pool_busy, false);
    pthread_mutex_unlock(&host_lock);
    pthread_mutex_unlock(&pool_admin);
}

static void register_fork_handlers(void)
{
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

/* Starts workers until there are `wanted` (or thread creation fails); returns how many
 * exist.  Called by the pool's holder. */
static int ensure_workers(pool *p, int wanted)
{
    if (p->workers >= wanted)
        return p->workers;
    /* Workers block every asynchronous signal (they inherit the creator's mask): signals
     * meant for the application go to its own threads. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    while (p->workers < wanted) {
        worker *w = &p->w[p->workers];
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        atomic_init(&w->ticket, 0);
        atomic_init(&w->stop, false);
        w->posted = NULL;
        w->owner = p;
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            pthread_mutex_destroy(&w->lock);
            pthread_cond_destroy(&w->wake);
            break;
        }
        p->workers++;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return p->workers;
}

static pool *pool_create(void)
{
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    pthread_mutex_init(&p->done_lock, NULL);
    pthread_cond_init(&p->done, NULL);
    return p;
}

static void pool_run(pool *p, int threads, size_t count, dafl_range_fn fn, void *ctx)
{
    int helpers = ensure_workers(p, threads - 1);
    if (helpers > threads - 1)
        helpers = threads - 1;
    size_t chunks = (size_t)(helpers + 1) * CHUNKS_PER_THREAD;
    if (chunks > count)
        chunks = count;
    job j = {.fn = fn, .ctx = ctx, .count = count};
    j.chunk = (count + chunks - 1) / chunks;
    j.chunks = (count + j.chunk - 1) / j.chunk;
    if ((size_t)helpers > j.chunks - 1)
        helpers = (int)j.chunks - 1; /* no one to wake for nothing */
    atomic_init(&j.next, 0);
    atomic_init(&j.running, helpers);
    for (int i = 0; i < helpers; i++) {
        worker *w = &p->w[i];
        w->posted = &j;
        atomic_fetch_add_explicit(&w->ticket, 1, memory_order_release);
        pthread_mutex_lock(&w->lock);
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }

    run_chunks(&j); /* the calling thread works too */

    for (int i = 0; i < SPIN_CHECKS &&
                    atomic_load_explicit(&j.running, memory_order_acquire) > 0; i++)
        cpu_relax();
    if (atomic_load_explicit(&j.running, memory_order_acquire) > 0) {
        pthread_mutex_lock(&p->done_lock);
        while (atomic_load_explicit(&j.running, memory_order_acquire) > 0)
            pthread_cond_wait(&p->done, &p->done_lock);
        pthread_mutex_unlock(&p->done_lock);
    }
}

void dafl_stop_threads(void)
{
    pthread_mutex_lock(&pool_admin);
    /* Wait for a call that is using the pool to finish with it. */
    bool expected = false;
    while (!atomic_compare_exchange_weak_explicit(&pool_busy, &expected, true,
                                                  memory_order_acquire, memory_order_relaxed)) {
        expected = false;
        sched_yield();
    }
    pool *p = the_pool;
    the_pool = NULL;
    atomic_store_explicit(&pool_busy, false, memory_order_release);
    pthread_mutex_unlock(&pool_admin);
    if (p)
        pool_destroy(p);
}

/* dlclose() (or exit) unmaps the code the workers run: stop them first. */
__attribute__((destructor)) static void stop_threads_on_unload(void)
{
    dafl_stop_threads();
}

dafl_status dafl_parallel_for(size_t count, size_t elements, dafl_range_fn fn, void *ctx)
{
    int threads = dafl_threads();
    if (threads <= 1 || count < 2 || elements < DAFL_MIN_PARALLEL_ELEMENTS) {
        if (count)
            fn(ctx, 0, count);
        return DAFL_OK;
    }
    pthread_mutex_lock(&host_lock);
    dafl_parallel_for_fn host = host_parallel_for;
    void *host_ctx = host_context;
    pthread_mutex_unlock(&host_lock);
    if (host)
        return host_run(host, host_ctx, count, fn, ctx);

    bool expected = false;
    if (!atomic_compare_exchange_strong_explicit(&pool_busy, &expected, true,
                                                 memory_order_acquire, memory_order_relaxed)) {
        fn(ctx, 0, count); /* another call holds the pool: run here */
        return DAFL_OK;
    }
    if (!the_pool) {
        pthread_once(&atfork_once, register_fork_handlers);
        the_pool = pool_create();
    }
    if (the_pool)
        pool_run(the_pool, threads, count, fn, ctx);
    else
        fn(ctx, 0, count); /* no memory for a pool: one thread */
    atomic_store_explicit(&pool_busy, false, memory_order_release);
    return DAFL_OK;
}
