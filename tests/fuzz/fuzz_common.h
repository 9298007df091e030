/*
 * Shared parts of the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * Each harness turns the fuzzer's bytes into one or more dafl calls: sizes (0, small,
 * and huge ones that the library must refuse before touching memory), parameters (with
 * NaN, infinities, negative and boundary values), enum values and flags out of range,
 * NULL pointers, and the float payloads of inputs and targets.  Every call is checked:
 *   - its status is one of the documented dafl_status values;
 *   - its inputs are unchanged;
 *   - a failing call left every output untouched (outputs start as a sentinel pattern);
 *   - the same call on the scalar ISA returns the same status and, on success, the same
 *     outputs bit for bit (every NaN counts as one value, as in the tests).
 * Every buffer is a heap block of exactly the documented size, so AddressSanitizer
 * reports any access outside it.  A violated check prints what happened and aborts,
 * which libFuzzer records as a crash.
 *
 * Byte format: values are read in order, little-endian; reading past the end gives
 * zeros, and a zero byte always means "the default / the ordinary case", so short
 * inputs are ordinary calls.  Whatever follows the fixed fields is the payload: the
 * float, label or mask data, repeated cyclically when a buffer needs more of it.
 */
#ifndef DAFL_FUZZ_COMMON_H
#define DAFL_FUZZ_COMMON_H

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dafl.h"

/* ---- failing loudly ------------------------------------------------------------------- */

#define FZ_REQUIRE(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "dafl fuzz check failed at %s:%d: %s\n  ", __FILE__, __LINE__,   \
                    #cond);                                                                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fputc('\n', stderr);                                                           \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

static inline int fz_status_valid(dafl_status st)
{
    return (int)st >= (int)DAFL_OK && (int)st <= (int)DAFL_ERR_PARALLEL_FOR;
}

#define FZ_REQUIRE_STATUS(st, what)                                                        \
    FZ_REQUIRE(fz_status_valid(st), "%s returned %d, not a documented dafl_status", (what), \
               (int)(st))

/* DAFL_FUZZ_VERBOSE=1 in the environment prints every checked call's status (to see
 * what a seed or a saved input does). */
static inline int fz_verbose(void)
{
    static int verbose = -1;
    if (verbose < 0) {
        const char *v = getenv("DAFL_FUZZ_VERBOSE");
        verbose = v && *v && *v != '0';
    }
    return verbose;
}

/* ---- reading the input ---------------------------------------------------------------- */

typedef struct fz {
    const uint8_t *data;
    size_t size, pos;
} fz;

static inline fz fz_begin(const uint8_t *data, size_t size)
{
    fz f = {data, size, 0};
    return f;
}

static inline uint64_t fz_bits(fz *f, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) {
        uint64_t b = f->pos < f->size ? f->data[f->pos] : 0;
        f->pos++;
        v |= b << (8 * i);
    }
    return v;
}
static inline uint8_t fz_u8(fz *f) { return (uint8_t)fz_bits(f, 1); }
static inline uint16_t fz_u16(fz *f) { return (uint16_t)fz_bits(f, 2); }
static inline uint32_t fz_u32(fz *f) { return (uint32_t)fz_bits(f, 4); }
static inline uint64_t fz_u64(fz *f) { return fz_bits(f, 8); }

static inline float fz_float_of_bits(uint32_t u)
{
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}
static inline double fz_double_of_bits(uint64_t u)
{
    double v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* Values every float parameter is tried with. */
static const float fz_special_floats[] = {
    0.0f, -0.0f, 1.0f, 0.5f, 2.0f, 4.0f, 8.0f, 8.5f, 9.0f, 0.25f, 1e-4f,
    0.49999997f, /* largest float below 0.5 */
    -1.0f, -FLT_MIN, -1e-45f, NAN, -NAN, INFINITY, -INFINITY, FLT_MAX, -FLT_MAX, FLT_MIN,
    1e-45f, /* smallest subnormal */
    1e30f, 1e-30f, 100.0f, 0.99999994f, 1.0000001f, 3.5f, 0.75f, 1.5f, 31.0f, 33.0f,
};
#define FZ_N_SPECIAL_FLOATS (sizeof fz_special_floats / sizeof fz_special_floats[0])

/* A float parameter: 0 -> the default, then the specials, then a grid of ordinary values
 * (0 .. 15.875 in steps of 1/8), and 0xff -> four raw bytes (any NaN payload). */
static inline float fz_param(fz *f, float def)
{
    uint8_t b = fz_u8(f);
    if (b == 0)
        return def;
    if (b == 0xff)
        return fz_float_of_bits(fz_u32(f));
    if ((size_t)b <= FZ_N_SPECIAL_FLOATS)
        return fz_special_floats[b - 1];
    return (float)(b - FZ_N_SPECIAL_FLOATS - 1) / 8.0f;
}

static const double fz_special_doubles[] = {
    0.0, -0.0, 1.0, 0.5, 2.0, 0.7, 0.3, 0.999999, 1e-6, -1.0, NAN, -NAN, INFINITY, -INFINITY,
    DBL_MAX, -DBL_MAX, DBL_MIN, 4.9e-324, 1e300, 1e-300, 1073741824.0 /* 2^30 */,
    1073741825.0, -1073741824.0, -1073741825.0, 1073741823.5, 0.4999999999999999,
    -0.5, 1.5, 2.5, 1e-9, 12.75, 6.0,
};
#define FZ_N_SPECIAL_DOUBLES (sizeof fz_special_doubles / sizeof fz_special_doubles[0])

/* A double parameter: like fz_param, with a grid of about -41 .. 41 in steps of 3/8. */
static inline double fz_param_double(fz *f, double def)
{
    uint8_t b = fz_u8(f);
    if (b == 0)
        return def;
    if (b == 0xff)
        return fz_double_of_bits(fz_u64(f));
    if ((size_t)b <= FZ_N_SPECIAL_DOUBLES)
        return fz_special_doubles[b - 1];
    return (double)((int)b - (int)FZ_N_SPECIAL_DOUBLES - 111) * 0.375;
}

/* An enum or flag word: 0 -> the default, 0xff -> four raw bytes, else the byte - 1
 * (the valid values and a good many invalid ones). */
static inline uint32_t fz_enum(fz *f, uint32_t def)
{
    uint8_t b = fz_u8(f);
    if (b == 0)
        return def;
    if (b == 0xff)
        return fz_u32(f);
    return (uint32_t)(b - 1);
}

/* A size: 0xff then an index picks a huge value (only used where the call must then fail
 * before it touches memory), else a 16-bit value reduced to 0 .. cap. */
static const size_t fz_huge_sizes[] = {
    SIZE_MAX,
    SIZE_MAX - 3,
    SIZE_MAX / 2,
    SIZE_MAX / 2 + 1,
    SIZE_MAX / 4 + 1,
    (size_t)1 << 62,
    ((size_t)1 << 32) + 1,
    (size_t)1 << 31,
    ((size_t)1 << 31) + 1,
    (size_t)3 << 62,
    SIZE_MAX / 8 + 1,
    (size_t)1 << 33,
};
#define FZ_N_HUGE (sizeof fz_huge_sizes / sizeof fz_huge_sizes[0])

static inline size_t fz_size(fz *f, size_t cap, int *huge)
{
    uint8_t b = fz_u8(f);
    if (b == 0xff) {
        *huge = 1;
        return fz_huge_sizes[fz_u8(f) % FZ_N_HUGE];
    }
    uint16_t v = (uint16_t)(b | (uint16_t)fz_u8(f) << 8);
    return (size_t)v % (cap + 1);
}

/* 1 when a * b * c * elem overflows size_t. */
static inline int fz_product_overflows(size_t a, size_t b, size_t c, size_t elem)
{
    size_t t;
    return __builtin_mul_overflow(a, b, &t) || __builtin_mul_overflow(t, c, &t) ||
           __builtin_mul_overflow(t, elem, &t);
}

/* ---- payloads --------------------------------------------------------------------------- */

/* The bytes after the fixed fields; read cyclically from `offset` (in 4-byte units). */
typedef struct fz_payload {
    const uint8_t *data;
    size_t size;
} fz_payload;

static inline fz_payload fz_rest(const fz *f)
{
    fz_payload p = {NULL, 0};
    if (f->pos < f->size) {
        p.data = f->data + f->pos;
        p.size = f->size - f->pos;
    }
    return p;
}

static inline uint32_t fz_word(const fz_payload *p, size_t index)
{
    if (p->size == 0)
        return 0;
    uint32_t v = 0;
    for (size_t b = 0; b < 4; b++)
        v |= (uint32_t)p->data[(index * 4 + b) % p->size] << (8 * b);
    /* vary repeated cycles a little so that long buffers are not all periodic */
    return v ^ (uint32_t)((index * 4 / p->size) * 0x9e3779b9u);
}

/* How logits are made from payload words. */
enum {
    FZ_VALUES_MIXED = 0, /* mostly moderate logits, some raw bits (NaN payloads, inf...) */
    FZ_VALUES_RAW = 1,   /* raw float bits                                              */
    FZ_VALUES_MODERATE = 2, /* logits in [-32, 32) only                                 */
    FZ_VALUES_UNIT = 3,  /* probabilities: [0, 1], with exact 0 and 1                  */
};

static inline float fz_value(const fz_payload *p, size_t index, unsigned mode)
{
    uint32_t w = fz_word(p, index);
    switch (mode % 4) {
    case FZ_VALUES_RAW:
        return fz_float_of_bits(w);
    case FZ_VALUES_MODERATE:
        return (float)(int32_t)w * 0x1.0p-26f;
    case FZ_VALUES_UNIT:
        if ((w & 0xf) == 0)
            return (float)((w >> 4) & 1);
        return (float)(w >> 8) * 0x1.0p-24f;
    default:
        if ((w & 0x1f) == 0)
            return fz_float_of_bits(w);
        if ((w & 0x1f) == 1)
            return fz_special_floats[(w >> 5) % FZ_N_SPECIAL_FLOATS];
        return (float)(int32_t)w * 0x1.0p-26f;
    }
}

/* How targets are made. */
enum {
    FZ_TARGETS_VALID = 0,  /* 0, 1 and values in between (-0 too)                  */
    FZ_TARGETS_RARE_BAD = 1, /* valid, except about one in 64 (raw bits)           */
    FZ_TARGETS_RAW = 2,    /* raw float bits: almost all outside [0, 1]              */
    FZ_TARGETS_EDGES = 3,  /* just inside and just outside [0, 1]                    */
};

static inline float fz_target(const fz_payload *p, size_t index, unsigned mode)
{
    uint32_t w = fz_word(p, index);
    static const float edges[] = {0.0f, -0.0f, 1.0f, 0.99999994f, 1e-45f, FLT_MIN,
                                  1.0000001f, -1e-45f, NAN, INFINITY, -INFINITY, 0.5f};
    switch (mode % 4) {
    case FZ_TARGETS_RAW:
        return fz_float_of_bits(w);
    case FZ_TARGETS_EDGES:
        return edges[w % (sizeof edges / sizeof edges[0])];
    case FZ_TARGETS_RARE_BAD:
        if ((w & 0x3f) == 0x3f)
            return fz_float_of_bits(w);
        /* fall through */
    default:
        switch (w & 3) {
        case 0: return 0.0f;
        case 1: return 1.0f;
        case 2: return (w & 4) ? -0.0f : (float)(w >> 8) * 0x1.0p-24f;
        default: return (float)(w >> 8) * 0x1.0p-24f;
        }
    }
}

/* ---- the ISA under test ------------------------------------------------------------------ */

/* Picks an available ISA from a byte (AUTO, SCALAR or a SIMD one) and selects it. */
static inline dafl_isa fz_select_isa(fz *f)
{
    static const dafl_isa order[] = {DAFL_ISA_AUTO, DAFL_ISA_AVX2, DAFL_ISA_AVX512,
                                     DAFL_ISA_NEON, DAFL_ISA_SCALAR};
    dafl_isa isa = order[fz_u8(f) % 5];
    if (!dafl_isa_available(isa))
        isa = DAFL_ISA_AUTO;
    dafl_status st = dafl_set_isa(isa);
    FZ_REQUIRE(st == DAFL_OK, "dafl_set_isa(%s) of an available ISA: %s", dafl_isa_name(isa),
               dafl_status_string(st));
    return isa;
}

/* ---- one checked call: the ISA under test against the scalar one ---------------------------- */

enum { FZ_MAX_IN = 4, FZ_MAX_OUT = 4 };

/* What a call reads and writes.  Inputs are copied from in_data into fresh heap blocks of
 * exactly in_bytes (NULL when in_null).  Outputs are fresh heap blocks of out_bytes filled
 * with the sentinel byte; out_alias[k] >= 0 makes output k the input block out_alias[k]
 * (an in-place gradient). */
typedef struct fz_call {
    int n_in, n_out;
    const void *in_data[FZ_MAX_IN];
    size_t in_bytes[FZ_MAX_IN];
    int in_null[FZ_MAX_IN];
    size_t out_bytes[FZ_MAX_OUT];
    int out_null[FZ_MAX_OUT];
    int out_is_float[FZ_MAX_OUT]; /* FZ_OUT_*: float32, bfloat16 or float16 elements,
                                     compared NaN-aware (any NaN equals any NaN: NaN
                                     payloads may differ between ISAs); else byte for byte */
    int out_alias[FZ_MAX_OUT];
    const char *name;
    /* optional: more checks of the outputs of the run on the ISA under test */
    void (*inspect)(void *ctx, dafl_status st, void *const out[]);
    void *inspect_ctx;
} fz_call;

static inline void fz_call_init(fz_call *c, const char *name)
{
    memset(c, 0, sizeof *c);
    for (int k = 0; k < FZ_MAX_OUT; k++)
        c->out_alias[k] = -1;
    c->name = name;
}

static inline int fz_add_in(fz_call *c, const void *data, size_t bytes, int is_null)
{
    c->in_data[c->n_in] = data;
    c->in_bytes[c->n_in] = bytes;
    c->in_null[c->n_in] = is_null;
    return c->n_in++;
}

enum { FZ_OUT_BYTES = 0, FZ_OUT_FLOAT = 1, FZ_OUT_BF16 = 2, FZ_OUT_F16 = 3 };

static inline int fz_add_out(fz_call *c, size_t bytes, int is_null, int is_float)
{
    c->out_bytes[c->n_out] = bytes;
    c->out_null[c->n_out] = is_null;
    c->out_is_float[c->n_out] = is_float;
    return c->n_out++;
}

/* The function under test: reads in[], writes out[] (entries may be NULL). */
typedef dafl_status (*fz_fn)(void *ctx, void *const in[], void *const out[]);

typedef struct fz_result {
    dafl_status status;
    void *in[FZ_MAX_IN];
    void *out[FZ_MAX_OUT];
} fz_result;

#define FZ_SENTINEL 0xa5

static inline void *fz_alloc(size_t bytes)
{
    void *p = malloc(bytes ? bytes : 1);
    FZ_REQUIRE(p != NULL, "harness allocation of %zu bytes failed", bytes);
    return p;
}

static inline int fz_all_bytes(const void *p, size_t n, unsigned char v)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return 0;
    return 1;
}

static inline int fz_same_floats(const void *a, const void *b, size_t bytes, size_t *where)
{
    for (size_t i = 0; i + sizeof(float) <= bytes; i += sizeof(float)) {
        float x, y;
        memcpy(&x, (const char *)a + i, sizeof x);
        memcpy(&y, (const char *)b + i, sizeof y);
        if (isnan(x) && isnan(y))
            continue;
        if (memcmp(&x, &y, sizeof x) != 0) {
            *where = i / sizeof(float);
            return 0;
        }
    }
    return 1;
}

/* Two bfloat16 (kind FZ_OUT_BF16) or float16 (FZ_OUT_F16) values are the same bits, or
 * both NaN. */
static inline int fz_same_half(uint16_t a, uint16_t b, int kind)
{
    const unsigned inf = kind == FZ_OUT_BF16 ? 0x7f80u : 0x7c00u;
    return a == b || ((a & 0x7fffu) > inf && (b & 0x7fffu) > inf);
}

static inline int fz_same_halves(const void *a, const void *b, size_t bytes, int kind,
                                 size_t *where)
{
    for (size_t i = 0; i + 2 <= bytes; i += 2) {
        uint16_t x, y;
        memcpy(&x, (const char *)a + i, 2);
        memcpy(&y, (const char *)b + i, 2);
        if (!fz_same_half(x, y, kind)) {
            *where = i / 2;
            return 0;
        }
    }
    return 1;
}

/* The index of the first NaN among n floats, or n. */
static inline size_t fz_first_nan(const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(v[i]))
            return i;
    return n;
}

/* For inputs a harness knows to be moderate: no NaN in the per-element loss (when
 * check_loss) or in the gradient.  `entry` names the call in the failure message. */
typedef struct fz_sane_outputs {
    const char *entry;
    size_t loss_floats, grad_floats;
    int check_loss;
} fz_sane_outputs;

static inline void fz_require_no_nan(void *vctx, dafl_status st, void *const out[])
{
    const fz_sane_outputs *s = vctx;
    size_t at;
    if (st != DAFL_OK)
        return;
    if (out[0] && s->check_loss)
        FZ_REQUIRE((at = fz_first_nan(out[0], s->loss_floats)) == s->loss_floats,
                   "%s: loss[%zu] is NaN for moderate inputs", s->entry, at);
    if (out[1])
        FZ_REQUIRE((at = fz_first_nan(out[1], s->grad_floats)) == s->grad_floats,
                   "%s: grad[%zu] is NaN for moderate inputs", s->entry, at);
}

static inline void fz_run_one(const fz_call *c, fz_fn fn, void *ctx, fz_result *r)
{
    for (int i = 0; i < c->n_in; i++) {
        r->in[i] = NULL;
        if (!c->in_null[i]) {
            r->in[i] = fz_alloc(c->in_bytes[i]);
            if (c->in_bytes[i])
                memcpy(r->in[i], c->in_data[i], c->in_bytes[i]);
        }
    }
    for (int k = 0; k < c->n_out; k++) {
        r->out[k] = NULL;
        if (c->out_alias[k] >= 0) {
            r->out[k] = r->in[c->out_alias[k]];
        } else if (!c->out_null[k]) {
            r->out[k] = fz_alloc(c->out_bytes[k]);
            memset(r->out[k], FZ_SENTINEL, c->out_bytes[k]);
        }
    }
    r->status = fn(ctx, r->in, r->out);
    FZ_REQUIRE_STATUS(r->status, c->name);

    /* inputs unchanged (unless written in place); failures write nothing */
    for (int i = 0; i < c->n_in; i++) {
        int written = 0;
        for (int k = 0; k < c->n_out; k++)
            written |= c->out_alias[k] == i && r->status == DAFL_OK;
        if (r->in[i] && !written)
            FZ_REQUIRE(c->in_bytes[i] == 0 || memcmp(r->in[i], c->in_data[i], c->in_bytes[i]) == 0,
                       "%s (%s) changed its input %d", c->name,
                       dafl_status_string(r->status), i);
    }
    if (r->status != DAFL_OK)
        for (int k = 0; k < c->n_out; k++)
            if (r->out[k] && c->out_alias[k] < 0)
                FZ_REQUIRE(fz_all_bytes(r->out[k], c->out_bytes[k], FZ_SENTINEL),
                           "%s failed with %s but wrote to output %d", c->name,
                           dafl_status_string(r->status), k);
}

static inline void fz_free_result(const fz_call *c, fz_result *r)
{
    for (int k = 0; k < c->n_out; k++)
        if (c->out_alias[k] < 0)
            free(r->out[k]);
    for (int i = 0; i < c->n_in; i++)
        free(r->in[i]);
}

/* Runs the call on the selected ISA and again on the scalar one; checks everything listed
 * at the top of this file; returns the status.  The selected ISA stays active. */
static inline dafl_status fz_check_call(const fz_call *c, fz_fn fn, void *ctx)
{
    const dafl_isa isa = dafl_active_isa();
    fz_result a, b;
    fz_run_one(c, fn, ctx, &a);
    if (c->inspect)
        c->inspect(c->inspect_ctx, a.status, a.out);
    FZ_REQUIRE(dafl_set_isa(DAFL_ISA_SCALAR) == DAFL_OK, "scalar ISA unavailable");
    fz_run_one(c, fn, ctx, &b);
    FZ_REQUIRE(dafl_set_isa(isa) == DAFL_OK, "cannot restore ISA %s", dafl_isa_name(isa));
    FZ_REQUIRE(a.status == b.status, "%s: %s on %s but %s on scalar", c->name,
               dafl_status_string(a.status), dafl_isa_name(isa), dafl_status_string(b.status));
    if (fz_verbose())
        fprintf(stderr, "%s on %s: %s\n", c->name, dafl_isa_name(isa),
                dafl_status_string(a.status));
    if (a.status == DAFL_OK) {
        for (int k = 0; k < c->n_out; k++) {
            if (!a.out[k])
                continue;
            size_t bytes = c->out_alias[k] >= 0 ? c->in_bytes[c->out_alias[k]] : c->out_bytes[k];
            size_t where = 0;
            if (c->out_is_float[k] == FZ_OUT_BF16 || c->out_is_float[k] == FZ_OUT_F16)
                FZ_REQUIRE(fz_same_halves(a.out[k], b.out[k], bytes, c->out_is_float[k], &where),
                           "%s: output %d element %zu differs between %s and scalar", c->name,
                           k, where, dafl_isa_name(isa));
            else if (c->out_is_float[k])
                FZ_REQUIRE(fz_same_floats(a.out[k], b.out[k], bytes, &where),
                           "%s: output %d element %zu differs between %s and scalar", c->name,
                           k, where, dafl_isa_name(isa));
            else
                FZ_REQUIRE(memcmp(a.out[k], b.out[k], bytes) == 0,
                           "%s: output %d differs between %s and scalar", c->name, k,
                           dafl_isa_name(isa));
        }
    }
    fz_free_result(c, &a);
    fz_free_result(c, &b);
    return a.status;
}

/* A parameter struct as the caller's header would lay it out.  fz_struct_size reads the
 * struct_size the caller claims (0: sizeof, the current header; 0xff: eight raw bytes;
 * else byte - 1, which covers 0, every member boundary and sizes just above sizeof).
 * fz_params_block copies the filled struct into a heap block of exactly the bytes such a
 * caller owns (at least the size_t), with struct_size set, so that reading past
 * struct_size is an AddressSanitizer report.  Free with free(). */
static inline size_t fz_struct_size(fz *f, size_t full_size)
{
    uint8_t b = fz_u8(f);
    return b == 0 ? full_size : b == 0xff ? (size_t)fz_u64(f) : (size_t)(b - 1);
}

static inline void *fz_params_block(const void *full, size_t full_size, size_t declared,
                                    size_t *owned)
{
    *owned = declared < sizeof(size_t) ? sizeof(size_t)
             : declared > full_size    ? full_size
                                       : declared;
    unsigned char *p = fz_alloc(*owned);
    memcpy(p, full, *owned);
    memcpy(p, &declared, sizeof declared);
    return p;
}

/* The parameter ranges inside which finite inputs must give results without NaN: weights
 * and the gradient scale no larger than 1e4 (nothing overflows), a normalizer no smaller
 * than 1e-3, and any exponent the library accepts (up to FLT_MAX: the powers then
 * underflow to 0, which must not turn into 0 * inf). */
static inline int fz_sane_weight(float w) { return w >= 0.0f && w <= 1e4f; }
static inline int fz_sane_exponent(float e) { return e >= 0.0f && isfinite(e); }
static inline int fz_sane_reduction(dafl_reduction r, float normalizer, float grad_scale)
{
    return (r != DAFL_REDUCTION_NORMALIZER || (normalizer >= 1e-3f && normalizer <= 1e30f)) &&
           fabsf(grad_scale) <= 1e4f;
}

/* The parameters the library will actually use: its defaults, overwritten by the first
 * `owned` bytes of the caller's block (what it does for 8 <= struct_size <= sizeof). */
static inline void fz_effective_params(void *eff, const void *defaults, size_t full_size,
                                       const void *block, size_t owned)
{
    memcpy(eff, defaults, full_size);
    memcpy(eff, block, owned);
}

#endif
