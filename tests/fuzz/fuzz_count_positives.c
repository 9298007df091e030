/*
 * libFuzzer harness: dafl_count_positives.
 *
 * Bytes: ISA, count (small, or huge with a short or NULL buffer), flags, pointers (bit 0
 * target NULL, bit 1 result NULL), target mode, payload.
 */
#include "fuzz_common.h"

#define MAX_COUNT (2 * DAFL_BLOCK_ELEMENTS + 40)

typedef struct ctx {
    size_t count;
    uint32_t flags;
} ctx;

static dafl_status call(void *vctx, void *const in[], void *const out[])
{
    const ctx *k = vctx;
    return dafl_count_positives(in[0], k->count, k->flags, out[0]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    fz_select_isa(&f);
    int huge = 0;
    const size_t count = fz_size(&f, MAX_COUNT, &huge);
    const uint32_t flags = fz_enum(&f, 0);
    uint8_t ptrs = fz_u8(&f);
    const unsigned y_mode = fz_u8(&f);
    const fz_payload payload = fz_rest(&f);
    if (huge && !fz_product_overflows(count, 1, 1, sizeof(float)))
        ptrs |= 1; /* a count the library cannot refuse: only with a NULL buffer */

    const size_t n = huge ? 16 : count;
    float *y = fz_alloc(n * sizeof(float));
    uint64_t want = 0;
    int valid = 1;
    for (size_t i = 0; i < n; i++) {
        y[i] = fz_target(&payload, i, y_mode);
        want += y[i] == 1.0f;
        valid &= y[i] >= 0.0f && y[i] <= 1.0f;
    }
    fz_call c;
    fz_call_init(&c, "dafl_count_positives");
    fz_add_in(&c, y, n * sizeof(float), ptrs & 1);
    fz_add_out(&c, sizeof(uint64_t), (ptrs >> 1) & 1, 0);
    ctx k = {count, flags};
    const dafl_status st = fz_check_call(&c, call, &k);
    FZ_REQUIRE(!huge || st != DAFL_OK, "dafl_count_positives accepted the count %zu", count);
    if (!huge && !(ptrs & 3)) {
        /* what the status and the count must be */
        dafl_status expect = flags & ~DAFL_FLAG_TRUST_TARGETS ? DAFL_ERR_INVALID_ENUM
                             : valid || (flags & DAFL_FLAG_TRUST_TARGETS) ? DAFL_OK
                                                                          : DAFL_ERR_INVALID_TARGET;
        FZ_REQUIRE(st == expect, "dafl_count_positives: %s, want %s", dafl_status_string(st),
                   dafl_status_string(expect));
        if (st == DAFL_OK) {
            uint64_t got = 0;
            FZ_REQUIRE(dafl_count_positives(y, count, flags, &got) == DAFL_OK && got == want,
                       "dafl_count_positives counted %llu, want %llu", (unsigned long long)got,
                       (unsigned long long)want);
        }
    }
    free(y);
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
