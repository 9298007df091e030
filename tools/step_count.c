/*
 * Runs a program single-stepped under ptrace and counts how often each instruction of one
 * shared object ran: an instruction profile that needs nothing but the CPU that runs the
 * code, so it works for AVX-512 kernels where valgrind cannot run them (valgrind has no
 * AVX-512) and where the machine has no performance counters.  Only the main thread is
 * traced: run the program with DAFL_THREADS=1.  The program runs at full speed until it
 * raises SIGUSR1 and is single-stepped from there until it raises SIGUSR2 (both are
 * swallowed), so that its setup is not counted; step_count sets STEP_COUNT=1 in its
 * environment for it to know (tools/loss_call.c raises them around its calls).  A program
 * that never raises SIGUSR1 is not counted at all.
 *
 *   gcc -O2 -o step_count tools/step_count.c
 *   DAFL_THREADS=1 DAFL_ISA=avx512 ./step_count out.tsv libdafl.so ./loss_call pf 2
 *   tools/pipe_ops.py out.tsv --elements 131072
 *
 * out.tsv: one line "map START END FILE_OFFSET PATH" per executable mapping of the
 * object (from /proc/PID/maps at exit), then one line "ADDRESS COUNT" (hexadecimal, then
 * decimal) per instruction address inside those mappings that ran.  tools/pipe_ops.py
 * disassembles the object and turns the counts into operations per FP pipe.
 * Cost: one ptrace stop per instruction, about 2-5 us each (a 64K-element call of a loss,
 * some 10^6 instructions, takes seconds).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

/* Executed addresses and their counts: open addressing, 2^22 slots (a process runs far
 * fewer distinct instructions). */
#define SLOTS (1u << 22)
static uint64_t slot_addr[SLOTS], slot_count[SLOTS];

static void count_address(uint64_t a)
{
    uint32_t i = (uint32_t)((a * UINT64_C(0x9e3779b97f4a7c15)) >> 42) & (SLOTS - 1);
    while (slot_addr[i] != a && slot_addr[i] != 0)
        i = (i + 1) & (SLOTS - 1);
    slot_addr[i] = a;
    slot_count[i]++;
}

typedef struct mapping {
    uint64_t start, end, offset;
    char path[512];
} mapping;

/* The executable mappings of the object whose path contains `name`, read while the
 * tracee still exists (at its exit stop). */
static int read_mappings(pid_t pid, const char *name, mapping *maps, int max)
{
    char file[64], line[1024];
    snprintf(file, sizeof file, "/proc/%d/maps", (int)pid);
    FILE *f = fopen(file, "r");
    if (!f)
        return 0;
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        mapping m;
        char perms[8];
        int path_at = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &m.start, &m.end, perms, &m.offset,
                   &path_at) != 4 || perms[2] != 'x' || !strstr(line + path_at, name))
            continue;
        snprintf(m.path, sizeof m.path, "%s", line + path_at);
        m.path[strcspn(m.path, "\n")] = 0;
        maps[n++] = m;
    }
    fclose(f);
    return n;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT.tsv OBJECT-NAME PROGRAM [ARGS...]\n", argv[0]);
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return 1;
    }
    if (pid == 0) {
        ptrace(PTRACE_TRACEME, 0, NULL, NULL);
        setenv("STEP_COUNT", "1", 1);
        execvp(argv[3], argv + 3);
        perror(argv[3]);
        _exit(127);
    }
    int status;
    waitpid(pid, &status, 0); /* stopped at the exec */
    if (!WIFSTOPPED(status)) {
        fprintf(stderr, "step_count: %s did not start\n", argv[3]);
        return 1;
    }
    ptrace(PTRACE_SETOPTIONS, pid, NULL, (void *)(long)PTRACE_O_TRACEEXIT);
    mapping maps[16];
    int nmaps = 0, exit_code = 1;
    uint64_t steps = 0;
    int stepping = 0;
    for (;;) {
        struct user_regs_struct regs;
        if (stepping && ptrace(PTRACE_GETREGS, pid, NULL, &regs) == 0) {
            count_address(regs.rip);
            steps++;
        }
        if (ptrace(stepping ? PTRACE_SINGLESTEP : PTRACE_CONT, pid, NULL, NULL) != 0) {
            perror("ptrace");
            return 1;
        }
        if (waitpid(pid, &status, 0) < 0) {
            perror("waitpid");
            return 1;
        }
        if (WIFEXITED(status) || WIFSIGNALED(status))
            break;
        if (status >> 8 == (SIGTRAP | (PTRACE_EVENT_EXIT << 8))) {
            nmaps = read_mappings(pid, argv[2], maps, 16);
            unsigned long code = 0;
            ptrace(PTRACE_GETEVENTMSG, pid, NULL, &code);
            exit_code = WIFEXITED((int)code) ? WEXITSTATUS((int)code) : 1;
            ptrace(PTRACE_CONT, pid, NULL, NULL);
            waitpid(pid, &status, 0);
            break;
        }
        if (WIFSTOPPED(status) && (WSTOPSIG(status) == SIGUSR1 || WSTOPSIG(status) == SIGUSR2)) {
            stepping = WSTOPSIG(status) == SIGUSR1; /* the signal is not delivered */
            continue;
        }
        if (WIFSTOPPED(status) && WSTOPSIG(status) != SIGTRAP) {
            fprintf(stderr, "step_count: the program got signal %d\n", WSTOPSIG(status));
            return 1;
        }
    }
    if (nmaps == 0) {
        fprintf(stderr, "step_count: no executable mapping of '%s' at exit\n", argv[2]);
        return 1;
    }
    FILE *out = fopen(argv[1], "w");
    if (!out) {
        perror(argv[1]);
        return 1;
    }
    for (int k = 0; k < nmaps; k++)
        fprintf(out, "map %lx %lx %lx %s\n", maps[k].start, maps[k].end, maps[k].offset,
                maps[k].path);
    uint64_t inside = 0;
    for (uint32_t i = 0; i < SLOTS; i++)
        for (int k = 0; k < nmaps; k++)
            if (slot_count[i] && slot_addr[i] >= maps[k].start && slot_addr[i] < maps[k].end) {
                fprintf(out, "%lx %lu\n", slot_addr[i], slot_count[i]);
                inside += slot_count[i];
            }
    fclose(out);
    fprintf(stderr, "step_count: %lu instructions, %lu in %s; the program exited %d\n",
            steps, inside, argv[2], exit_code);
    return exit_code;
}
