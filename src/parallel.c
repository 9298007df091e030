/*
 * dafl's thread pool and the switch to a host's parallel-for.
 *
 * The pool is deliberately small: workers are started on the first call that wants them
 * and then sleep on a condition variable.  One call at a time uses the pool (a trylock);
 * a call that finds it busy runs on its own thread, which keeps concurrent host threads
 * safe and never makes one call wait for another.  Work is handed out in chunks from an
 * atomic counter, so a slow thread does not hold up the others.
 */
#include "parallel.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#define CHUNKS_PER_THREAD 4

static atomic_int configured_threads; /* 0: the default */

static pthread_mutex_t host_lock = PTHREAD_MUTEX_INITIALIZER;
static dafl_parallel_for_fn host_parallel_for; /* guarded by host_lock */
static void *host_context;

static int default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > DAFL_MAX_THREADS ? DAFL_MAX_THREADS : (int)n;
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
    return n ? n : default_threads();
}

dafl_status dafl_set_parallel_for(dafl_parallel_for_fn fn, void *host_ctx)
{
    pthread_mutex_lock(&host_lock);
    host_parallel_for = fn;
    host_context = fn ? host_ctx : NULL;
    pthread_mutex_unlock(&host_lock);
    return DAFL_OK;
}

/* ---- the pool ------------------------------------------------------------------------ */

/* How long a thread spins, checking an atomic, before it sleeps on a condition variable:
 * a training loop calls again within microseconds, and waking a sleeping thread costs tens
 * of microseconds on a virtual machine - as much as a whole 64K-element call. */
#define SPIN_CHECKS 20000

typedef struct pool {
    pthread_mutex_t lock;       /* guards workers, born[] and the sleeping waits    */
    pthread_cond_t work_posted; /* a new generation of work                        */
    pthread_cond_t work_done;   /* the last participating worker finished          */
    int workers;                /* started so far                                  */
    atomic_ulong generation;    /* bumped (release) once a job's fields are set    */
    int participants;           /* workers 0 .. participants-1 work on this job    */
    atomic_int running;         /* participants that have not finished yet         */
    dafl_range_fn fn;
    void *ctx;
    size_t count, chunk, chunks;
    atomic_size_t next; /* the next chunk to take */
    /* The generation current when each worker was created: a worker started for a job
     * must take part in that job even if it first runs after the job was posted. */
    unsigned long born[DAFL_MAX_THREADS];
} pool;

static pool the_pool = {.lock = PTHREAD_MUTEX_INITIALIZER,
                        .work_posted = PTHREAD_COND_INITIALIZER,
                        .work_done = PTHREAD_COND_INITIALIZER};
static pthread_mutex_t pool_in_use = PTHREAD_MUTEX_INITIALIZER;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ volatile("yield");
#endif
}

static void run_chunks(pool *p)
{
    for (;;) {
        size_t i = atomic_fetch_add(&p->next, 1);
        if (i >= p->chunks)
            return;
        size_t begin = i * p->chunk;
        size_t end = begin + p->chunk < p->count ? begin + p->chunk : p->count;
        p->fn(p->ctx, begin, end);
    }
}

/* Waits until the generation differs from `seen` and returns it (acquire: the job's
 * fields, written before the release that bumped it, are visible). */
static unsigned long wait_for_work(pool *p, unsigned long seen)
{
    for (int i = 0; i < SPIN_CHECKS; i++) {
        unsigned long g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
    }
    pthread_mutex_lock(&p->lock);
    while (atomic_load_explicit(&p->generation, memory_order_acquire) == seen)
        pthread_cond_wait(&p->work_posted, &p->lock);
    pthread_mutex_unlock(&p->lock);
    return atomic_load_explicit(&p->generation, memory_order_acquire);
}

static void *worker_main(void *arg)
{
    pool *p = &the_pool;
    int id = (int)(intptr_t)arg;
    pthread_mutex_lock(&p->lock);
    unsigned long seen = p->born[id];
    pthread_mutex_unlock(&p->lock);
    for (;;) {
        seen = wait_for_work(p, seen);
        if (id >= p->participants)
            continue;
        run_chunks(p);
        if (atomic_fetch_sub(&p->running, 1) == 1) {
            /* the lock orders this signal after the caller's check of `running` */
            pthread_mutex_lock(&p->lock);
            pthread_cond_signal(&p->work_done);
            pthread_mutex_unlock(&p->lock);
        }
    }
    return NULL;
}

/* Start workers until there are `wanted` (or thread creation fails); returns how many
 * exist.  Called with p->lock held. */
static int ensure_workers(pool *p, int wanted)
{
    while (p->workers < wanted) {
        pthread_t thread;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        p->born[p->workers] = atomic_load(&p->generation);
        int failed = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)p->workers);
        pthread_attr_destroy(&attr);
        if (failed)
            break;
        p->workers++;
    }
    return p->workers;
}

static void pool_run(int threads, size_t count, dafl_range_fn fn, void *ctx)
{
    pool *p = &the_pool;
    pthread_mutex_lock(&p->lock);
    int helpers = ensure_workers(p, threads - 1);
    if (helpers > threads - 1)
        helpers = threads - 1;
    size_t chunks = (size_t)(helpers + 1) * CHUNKS_PER_THREAD;
    if (chunks > count)
        chunks = count;
    p->fn = fn;
    p->ctx = ctx;
    p->count = count;
    p->chunk = (count + chunks - 1) / chunks;
    p->chunks = (count + p->chunk - 1) / p->chunk;
    atomic_store(&p->next, 0);
    p->participants = helpers;
    atomic_store(&p->running, helpers);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->work_posted);
    pthread_mutex_unlock(&p->lock);

    run_chunks(p); /* the calling thread works too */

    for (int i = 0; i < SPIN_CHECKS && atomic_load(&p->running) > 0; i++)
        cpu_relax();
    if (atomic_load(&p->running) > 0) {
        pthread_mutex_lock(&p->lock);
        while (atomic_load(&p->running) > 0)
            pthread_cond_wait(&p->work_done, &p->lock);
        pthread_mutex_unlock(&p->lock);
    }
}

void dafl_parallel_for(size_t count, size_t elements, dafl_range_fn fn, void *ctx)
{
    int threads = dafl_threads();
    if (threads <= 1 || count < 2 || elements < DAFL_MIN_PARALLEL_ELEMENTS) {
        if (count)
            fn(ctx, 0, count);
        return;
    }
    pthread_mutex_lock(&host_lock);
    dafl_parallel_for_fn host = host_parallel_for;
    void *host_ctx = host_context;
    pthread_mutex_unlock(&host_lock);
    if (host) {
        host(host_ctx, count, fn, ctx);
        return;
    }
    if (pthread_mutex_trylock(&pool_in_use) != 0) {
        fn(ctx, 0, count); /* another call holds the pool: run here */
        return;
    }
    pool_run(threads, count, fn, ctx);
    pthread_mutex_unlock(&pool_in_use);
}
