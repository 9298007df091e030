/*
 * The core clock of an x86-64 CPU, measured: a chain of dependent integer adds retires
 * one add per cycle, whatever the TSC's rate (on the VM of docs/benchmarks.md the TSC
 * ticks at 2.44 GHz while the core runs at 3.1-3.2 GHz).  Cycles per element are
 * nanoseconds per element times this.
 *   gcc -O2 -o core_clock tools/core_clock.c && ./core_clock
 */
#include <stdio.h>
#include <time.h>
int main(void){
  double best = 1e30; unsigned long n = 400000000UL;
  for (int r = 0; r < 7; r++) {
    struct timespec a, b; unsigned long x = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (unsigned long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double t = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
    if (t < best) best = t;
  }
  printf("core clock: %.3f GHz\n", 4.0 * n / best / 1e9);
  return 0;
}
