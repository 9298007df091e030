/*
 * libFuzzer harness: the partial statistics (dafl_stats_init, dafl_stats_combine,
 * dafl_stats_reduce, the four accessors) as a program of operations on four statistics.
 *
 * Each operation is a byte (op % 8) and its operands:
 *   0 init i               1 loss i (statistics of a loss call, checked against scalar)
 *   2 combine i j (+NULLs)  3 reduce i (reduction, normalizer, NULL output)
 *   4 accessors i (+NULL)   5 garbage i (never-initialised bytes)
 *   6 shards: one call over blocks + tail equals the combined calls over the pieces
 *   7 combine i into itself
 * The data of the loss calls come from the input bytes too (all of them, cyclically).
 */
#include "fuzz_common.h"

#define POOL 4
#define MAX_OPS 64

static dafl_stats pool[POOL];
static int pool_garbage[POOL]; /* never initialised: every use must be refused */
static fz_payload all;
static size_t cursor; /* where the next data come from */

static float fresh_value(unsigned mode) { return fz_value(&all, cursor++, mode); }
static float fresh_target(unsigned mode) { return fz_target(&all, cursor++, mode); }

/* Statistics of one loss call over x, y (count elements) on the active ISA and on the
 * scalar one: they must be the same bytes.  Also checks that dafl_stats_reduce gives
 * the call's own reduced loss and that the counts are right.  Returns the status. */
static dafl_status loss_stats(int kind, const float *x, const float *y, const int32_t *labels,
                              size_t count, dafl_reduction reduction, dafl_stats *out)
{
    const dafl_isa isa = dafl_active_isa();
    dafl_stats a, b;
    float la = -1.0f, lb = -1.0f;
    dafl_status sa, sb;
    static const float class_weights[3] = {0.5f, 1.0f, 2.0f};
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1)
            FZ_REQUIRE(dafl_set_isa(DAFL_ISA_SCALAR) == DAFL_OK, "scalar");
        dafl_stats *s = pass ? &b : &a;
        float *l = pass ? &lb : &la;
        dafl_status st;
        if (kind == 0) {
            dafl_penalty_focal_params p;
            dafl_penalty_focal_params_init(&p);
            p.reduction = reduction;
            p.flags = DAFL_FLAG_TRUST_TARGETS;
            st = dafl_penalty_focal(x, y, count, &p, l, NULL, s);
        } else if (kind == 1) {
            dafl_bce_params p;
            dafl_bce_params_init(&p);
            p.reduction = reduction;
            st = dafl_bce_with_logits(x, y, count, &p, l, NULL, s);
        } else {
            dafl_softmax_focal_params p;
            dafl_softmax_focal_params_init(&p);
            p.reduction = reduction;
            p.class_weights = class_weights;
            p.layout = DAFL_LAYOUT_NHWC;
            st = dafl_softmax_focal(x, labels, 1, 3, count / 3, &p, l, NULL, s);
        }
        FZ_REQUIRE_STATUS(st, "loss call");
        if (pass)
            sb = st;
        else
            sa = st;
    }
    FZ_REQUIRE(dafl_set_isa(isa) == DAFL_OK, "restore ISA");
    FZ_REQUIRE(sa == sb, "status %d on %s, %d on scalar", (int)sa, dafl_isa_name(isa), (int)sb);
    if (sa != DAFL_OK)
        return sa;
    FZ_REQUIRE(memcmp(&a, &b, sizeof a) == 0, "statistics differ between %s and scalar",
               dafl_isa_name(isa));
    size_t where;
    FZ_REQUIRE(fz_same_floats(&la, &lb, sizeof la, &where), "reduced loss differs from scalar");
    float again = -2.0f;
    FZ_REQUIRE(dafl_stats_reduce(&a, reduction, 1.0f, &again) == DAFL_OK &&
                   fz_same_floats(&again, &la, sizeof la, &where),
               "dafl_stats_reduce(reduction %d) is not the call's reduced loss", (int)reduction);
    if (kind < 2) {
        uint64_t positives = 0;
        FZ_REQUIRE(dafl_count_positives(y, count, DAFL_FLAG_TRUST_TARGETS, &positives) ==
                       DAFL_OK,
                   "count_positives");
        FZ_REQUIRE(dafl_stats_positives(&a) == positives && dafl_stats_elements(&a) == count,
                   "statistics count %llu positives of %llu elements, want %llu of %zu",
                   (unsigned long long)dafl_stats_positives(&a),
                   (unsigned long long)dafl_stats_elements(&a), (unsigned long long)positives,
                   count);
    }
    *out = a;
    return DAFL_OK;
}

/* The data of one loss call, drawn from the input. */
typedef struct data {
    float x[3 * DAFL_BLOCK_ELEMENTS + 60];
    float y[3 * DAFL_BLOCK_ELEMENTS + 60];
    int32_t labels[DAFL_BLOCK_ELEMENTS + 20];
} data;
static data d;

static void fill(size_t count, int kind, unsigned x_mode, unsigned y_mode)
{
    for (size_t i = 0; i < count; i++) {
        d.x[i] = fresh_value(x_mode);
        d.y[i] = fresh_target(y_mode);
    }
    if (kind == 2)
        for (size_t i = 0; i < count / 3; i++) {
            uint32_t w = fz_word(&all, cursor++);
            d.labels[i] = (w & 7) == 0 ? -100 : (int32_t)(w % 3);
        }
}

static void check_reduce(const dafl_stats *s, int garbage, dafl_reduction r, float normalizer,
                         int null_out)
{
    float out = -3.0f;
    dafl_status st = dafl_stats_reduce(s, r, normalizer, null_out ? NULL : &out);
    FZ_REQUIRE_STATUS(st, "dafl_stats_reduce");
    if (st != DAFL_OK) {
        FZ_REQUIRE(out == -3.0f, "failing dafl_stats_reduce wrote its output");
        return;
    }
    FZ_REQUIRE(!garbage && !null_out, "dafl_stats_reduce accepted %s",
               garbage ? "never-initialised statistics" : "a NULL output");
    /* the documented meaning of each reduction, from the accessors */
    const double sum = dafl_stats_loss_sum(s);
    double denom = 1.0;
    if (r == DAFL_REDUCTION_MEAN)
        denom = dafl_stats_weight_sum(s);
    else if (r == DAFL_REDUCTION_POSITIVES)
        denom = dafl_stats_positives(s) ? (double)dafl_stats_positives(s) : 1.0;
    else if (r == DAFL_REDUCTION_NORMALIZER)
        denom = (double)normalizer;
    FZ_REQUIRE(r == DAFL_REDUCTION_SUM || r == DAFL_REDUCTION_MEAN ||
                   r == DAFL_REDUCTION_POSITIVES || r == DAFL_REDUCTION_NORMALIZER,
               "dafl_stats_reduce accepted reduction %d", (int)r);
    FZ_REQUIRE(r != DAFL_REDUCTION_NORMALIZER || (normalizer > 0.0f && isfinite(normalizer)),
               "dafl_stats_reduce accepted normalizer %g", (double)normalizer);
    const float want = (float)(sum / denom);
    size_t where;
    FZ_REQUIRE(fz_same_floats(&out, &want, sizeof out, &where),
               "dafl_stats_reduce(%d) gave %a, the accessors say %a", (int)r, (double)out,
               (double)want);
}

int LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
    fz f = fz_begin(bytes, size);
    all.data = bytes;
    all.size = size;
    cursor = size / 4 / 2; /* the second half, to begin with */
    fz_select_isa(&f);
    for (int i = 0; i < POOL; i++) {
        dafl_stats_init(&pool[i]);
        pool_garbage[i] = 0;
    }
    dafl_stats_init(NULL); /* must not crash */
    dafl_stats fresh;
    dafl_stats_init(&fresh);

    for (int op = 0; op < MAX_OPS && f.pos < f.size; op++) {
        const uint8_t code = fz_u8(&f);
        const int i = fz_u8(&f) % POOL;
        switch (code % 8) {
        case 0:
            dafl_stats_init(&pool[i]);
            pool_garbage[i] = 0;
            break;
        case 1: {
            const int kind = fz_u8(&f) % 3;
            size_t count = fz_u16(&f) % (2 * DAFL_BLOCK_ELEMENTS + 40);
            if (kind == 2)
                count -= count % 3;
            const unsigned x_mode = fz_u8(&f), y_mode = fz_u8(&f);
            /* a reducing reduction (NONE would want count floats of loss output) */
            const dafl_reduction r = (dafl_reduction)(1 + fz_u8(&f) % 4);
            fill(count, kind, x_mode, kind == 1 ? FZ_TARGETS_VALID : y_mode);
            dafl_stats s;
            if (loss_stats(kind, d.x, d.y, d.labels, count,
                           kind == 2 && r == DAFL_REDUCTION_POSITIVES ? DAFL_REDUCTION_SUM : r,
                           &s) == DAFL_OK) {
                pool[i] = s;
                pool_garbage[i] = 0;
            }
            break;
        }
        case 2: {
            const uint8_t b = fz_u8(&f);
            const int j = b % POOL, null_into = (b >> 4) & 1, null_from = (b >> 5) & 1;
            const dafl_stats before = pool[i], from = pool[j];
            dafl_status st = dafl_stats_combine(null_into ? NULL : &pool[i],
                                                null_from ? NULL : &pool[j]);
            FZ_REQUIRE_STATUS(st, "dafl_stats_combine");
            if (null_into || null_from || pool_garbage[i] || pool_garbage[j]) {
                FZ_REQUIRE(st != DAFL_OK, "dafl_stats_combine accepted %s",
                           null_into || null_from ? "NULL" : "never-initialised statistics");
            }
            if (st != DAFL_OK) {
                FZ_REQUIRE(memcmp(&before, &pool[i], sizeof before) == 0,
                           "failing dafl_stats_combine changed its output");
                break;
            }
            /* commutative, and combining the empty statistics changes nothing */
            dafl_stats other = from;
            FZ_REQUIRE(dafl_stats_combine(&other, &before) == DAFL_OK &&
                           memcmp(&other, &pool[i], sizeof other) == 0,
                       "dafl_stats_combine is not commutative");
            other = pool[i];
            FZ_REQUIRE(dafl_stats_combine(&other, &fresh) == DAFL_OK &&
                           memcmp(&other, &pool[i], sizeof other) == 0,
                       "combining empty statistics changed something");
            break;
        }
        case 3: {
            const dafl_reduction r = (dafl_reduction)fz_enum(&f, DAFL_REDUCTION_SUM);
            const float normalizer = fz_param(&f, 1.0f);
            const int null_out = fz_u8(&f) == 1;
            check_reduce(&pool[i], pool_garbage[i], r, normalizer, null_out);
            break;
        }
        case 4: {
            const dafl_stats *s = fz_u8(&f) == 1 ? NULL : &pool[i];
            const double sum = dafl_stats_loss_sum(s), w = dafl_stats_weight_sum(s);
            const uint64_t pos = dafl_stats_positives(s), el = dafl_stats_elements(s);
            if (!s || pool_garbage[i])
                FZ_REQUIRE(sum == 0.0 && w == 0.0 && pos == 0 && el == 0,
                           "accessors of %s statistics are not 0",
                           s ? "never-initialised" : "NULL");
            break;
        }
        case 5: {
            unsigned char *raw = (unsigned char *)&pool[i];
            for (size_t k = 0; k < sizeof pool[i]; k++)
                raw[k] = (unsigned char)fz_word(&all, cursor++);
            /* never-initialised statistics, which the library must recognise as such */
            if (memcmp(raw, &fresh, sizeof(uint64_t)) == 0)
                raw[0] ^= 1;
            pool_garbage[i] = 1;
            break;
        }
        case 6: {
            /* statistics of pieces that start at block multiples combine into exactly
             * the statistics of one call over everything */
            const int kind = fz_u8(&f) % 2;
            const size_t blocks = 1 + fz_u8(&f) % 2, tail = fz_u16(&f) % (DAFL_BLOCK_ELEMENTS + 40);
            const size_t count = blocks * DAFL_BLOCK_ELEMENTS + tail;
            const unsigned x_mode = fz_u8(&f), y_mode = fz_u8(&f);
            fill(count, kind, x_mode, kind == 1 ? FZ_TARGETS_VALID : y_mode);
            dafl_stats whole, head, rest;
            const size_t cut = (size_t)(fz_u8(&f) % (blocks + 1)) * DAFL_BLOCK_ELEMENTS;
            if (loss_stats(kind, d.x, d.y, NULL, count, DAFL_REDUCTION_SUM, &whole) != DAFL_OK)
                break;
            FZ_REQUIRE(loss_stats(kind, d.x, d.y, NULL, cut, DAFL_REDUCTION_SUM, &head) ==
                               DAFL_OK &&
                           loss_stats(kind, d.x + cut, d.y + cut, NULL, count - cut,
                                      DAFL_REDUCTION_SUM, &rest) == DAFL_OK,
                       "a piece of valid data was refused");
            FZ_REQUIRE(dafl_stats_combine(&rest, &head) == DAFL_OK &&
                           memcmp(&rest, &whole, sizeof rest) == 0,
                       "pieces cut at %zu of %zu do not combine into the whole", cut, count);
            pool[i] = whole;
            pool_garbage[i] = 0;
            break;
        }
        default: {
            const dafl_stats before = pool[i];
            dafl_status st = dafl_stats_combine(&pool[i], &pool[i]);
            FZ_REQUIRE_STATUS(st, "dafl_stats_combine (self)");
            FZ_REQUIRE((st == DAFL_OK) == !pool_garbage[i], "self-combine: %s",
                       dafl_status_string(st));
            if (st != DAFL_OK)
                FZ_REQUIRE(memcmp(&before, &pool[i], sizeof before) == 0,
                           "failing self-combine changed its statistics");
            break;
        }
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
    return 0;
}
