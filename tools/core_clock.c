/*
 * The core clock of an x86-64 CPU, measured: a chain of dependent integer adds retires
 * one add per cycle, whatever the TSC's rate (on the VM of docs/benchmarks.md the TSC
 * ticks at 2.44 GHz while the core runs at 3.1-3.2 GHz).  Cycles per element are
 * nanoseconds per element times this.
 *
 * The chain is timed in the thread's CPU time, so that time the scheduler gives other
 * processes does not count (on a busy machine wall-clock time read clocks of 0.4 GHz);
 * the fastest of 7 rounds is taken.  The TSC's rate, the clock Google Benchmark's
 * "Run on (... MHz CPU s)" line and TSC-based cycle counts use, is measured against
 * wall-clock time over the same rounds.
 *   gcc -O2 -o core_clock tools/core_clock.c && ./core_clock
 * prints two lines (bench/report.py reads them):
 *   core clock: 3.190 GHz
 *   TSC: 2.445 GHz
 */
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static double seconds(clockid_t clock)
{
  struct timespec t;
  clock_gettime(clock, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void){
  double best = 1e30, tsc_ticks = 0, tsc_seconds = 0; unsigned long n = 400000000UL;
  for (int r = 0; r < 7; r++) {
    unsigned long x = 0;
    double wall = seconds(CLOCK_MONOTONIC), cpu = seconds(CLOCK_THREAD_CPUTIME_ID);
    unsigned long long tsc = __rdtsc();
    for (unsigned long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    tsc_ticks += (double)(__rdtsc() - tsc);
    tsc_seconds += seconds(CLOCK_MONOTONIC) - wall;
    double t = seconds(CLOCK_THREAD_CPUTIME_ID) - cpu;
    if (t < best) best = t;
  }
  printf("core clock: %.3f GHz\n", 4.0 * n / best / 1e9);
  printf("TSC: %.3f GHz\n", tsc_ticks / tsc_seconds / 1e9);
  return 0;
}
