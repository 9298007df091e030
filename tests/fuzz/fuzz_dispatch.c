/*
 * libFuzzer harness: run-time dispatch and the small informational entry points:
 * dafl_set_isa with any value, dafl_active_isa, dafl_isa_available, dafl_isa_name,
 * dafl_status_string, dafl_version(_number), and the thread count when the header has it.
 * Between switches a small loss call must give the same bits on every ISA it runs on.
 *
 * Bytes: a sequence of (operation, value) pairs.
 */
#include "fuzz_common.h"

#define MAX_OPS 64

static float reference_loss(const float *x, const float *y, size_t n, float *grad)
{
    float loss = -1.0f;
    dafl_penalty_focal_params p;
    dafl_penalty_focal_params_init(&p);
    p.reduction = DAFL_REDUCTION_SUM;
    dafl_status st = dafl_penalty_focal(x, y, n, &p, &loss, grad, NULL);
    FZ_REQUIRE(st == DAFL_OK, "penalty focal on %s: %s", dafl_isa_name(dafl_active_isa()),
               dafl_status_string(st));
    return loss;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz f = fz_begin(data, size);
    const fz_payload pl = {data, size};
    enum { N = 37 };
    float x[N], y[N], g0[N], g[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = fz_value(&pl, i, FZ_VALUES_MIXED);
        y[i] = fz_target(&pl, i + N, FZ_TARGETS_VALID);
    }
    FZ_REQUIRE(dafl_set_isa(DAFL_ISA_SCALAR) == DAFL_OK, "scalar");
    const float l0 = reference_loss(x, y, N, g0);
    FZ_REQUIRE(dafl_set_isa(DAFL_ISA_AUTO) == DAFL_OK, "auto");
    const dafl_isa best = dafl_active_isa();
    FZ_REQUIRE(best != DAFL_ISA_AUTO && dafl_isa_available(best), "auto chose %d", (int)best);

    for (int op = 0; op < MAX_OPS && f.pos < f.size; op++) {
        const uint8_t code = fz_u8(&f);
        const uint32_t v = fz_enum(&f, 0);
        switch (code % 5) {
        case 0: {
            const dafl_isa before = dafl_active_isa();
            const dafl_isa want = (dafl_isa)v;
            dafl_status st = dafl_set_isa(want);
            FZ_REQUIRE_STATUS(st, "dafl_set_isa");
            const int known = v <= (uint32_t)DAFL_ISA_NEON;
            if (!known) {
                FZ_REQUIRE(st == DAFL_ERR_INVALID_ENUM, "dafl_set_isa(%u): %s", v,
                           dafl_status_string(st));
            } else if (!dafl_isa_available(want)) {
                FZ_REQUIRE(st == DAFL_ERR_ISA_UNAVAILABLE, "dafl_set_isa(%s): %s",
                           dafl_isa_name(want), dafl_status_string(st));
            } else {
                FZ_REQUIRE(st == DAFL_OK, "dafl_set_isa(%s): %s", dafl_isa_name(want),
                           dafl_status_string(st));
            }
            if (st != DAFL_OK)
                FZ_REQUIRE(dafl_active_isa() == before, "a failing dafl_set_isa changed the ISA");
            else
                FZ_REQUIRE(dafl_active_isa() == (want == DAFL_ISA_AUTO ? best : want),
                           "dafl_set_isa(%s) runs %s", dafl_isa_name(want),
                           dafl_isa_name(dafl_active_isa()));
            break;
        }
        case 1: {
            const int a = dafl_isa_available((dafl_isa)v);
            FZ_REQUIRE(a == 0 || a == 1, "dafl_isa_available(%u) = %d", v, a);
            FZ_REQUIRE(v <= (uint32_t)DAFL_ISA_NEON || a == 0, "unknown ISA %u available", v);
            const char *name = dafl_isa_name((dafl_isa)v);
            FZ_REQUIRE(name != NULL && strlen(name) > 0, "dafl_isa_name(%u)", v);
            FZ_REQUIRE(v <= (uint32_t)DAFL_ISA_NEON || strcmp(name, "unknown") == 0,
                       "dafl_isa_name(%u) = %s", v, name);
            break;
        }
        case 2: {
            const char *s = dafl_status_string((dafl_status)v);
            FZ_REQUIRE(s != NULL && strncmp(s, "DAFL_", 5) == 0, "dafl_status_string(%u)", v);
            FZ_REQUIRE(fz_status_valid((dafl_status)v) == (strstr(s, "UNKNOWN") == NULL),
                       "dafl_status_string(%u) = %s", v, s);
            FZ_REQUIRE(strcmp(dafl_version(), DAFL_VERSION_STRING) == 0 &&
                           dafl_version_number() == DAFL_VERSION_NUMBER,
                       "version");
            break;
        }
        case 3: {
#ifdef DAFL_MAX_THREADS
            const int before = dafl_threads();
            const int t = (int)v;
            dafl_status st = dafl_set_threads(t);
            FZ_REQUIRE_STATUS(st, "dafl_set_threads");
            FZ_REQUIRE((st == DAFL_OK) == (t >= 0 && t <= DAFL_MAX_THREADS),
                       "dafl_set_threads(%d): %s", t, dafl_status_string(st));
            FZ_REQUIRE(st == DAFL_OK ? (t == 0 || dafl_threads() == t) : dafl_threads() == before,
                       "dafl_set_threads(%d) then dafl_threads() = %d", t, dafl_threads());
            FZ_REQUIRE(dafl_threads() >= 1, "dafl_threads() = %d", dafl_threads());
#endif
            break;
        }
        default: {
            /* the active ISA gives the scalar bits */
            const float l = reference_loss(x, y, N, g);
            size_t where;
            FZ_REQUIRE(fz_same_floats(&l, &l0, sizeof l, &where) &&
                           fz_same_floats(g, g0, sizeof g, &where),
                       "%s differs from scalar", dafl_isa_name(dafl_active_isa()));
            break;
        }
        }
    }
    dafl_set_isa(DAFL_ISA_AUTO);
#ifdef DAFL_MAX_THREADS
    dafl_set_threads(0);
#endif
    return 0;
}
