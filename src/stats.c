#include "stats.h"

#include <string.h>
#include "fpenv.h"

#define DAFL_STATS_MAGIC UINT64_C(0x6461666c73743031) /* "daflst01" */

_Static_assert(sizeof(dafl_stats_impl) <= sizeof(dafl_stats),
               "dafl_stats must stay large enough for its contents");

void dafl_stats_impl_clear(dafl_stats_impl *s)
{
    memset(s, 0, sizeof *s);
    s->magic = DAFL_STATS_MAGIC;
}

dafl_status dafl_stats_read(const dafl_stats *stats, dafl_stats_impl *s)
{
    memcpy(s, stats, sizeof *s);
    return s->magic == DAFL_STATS_MAGIC ? DAFL_OK : DAFL_ERR_INVALID_PARAMETER;
}

void dafl_stats_write(dafl_stats *stats, const dafl_stats_impl *s)
{
    memset(stats, 0, sizeof *stats);
    memcpy(stats, s, sizeof *s);
}

void dafl_stats_init(dafl_stats *stats)
{
    if (!stats)
        return;
    dafl_stats_impl s;
    dafl_stats_impl_clear(&s);
    dafl_stats_write(stats, &s);
}

dafl_status dafl_stats_combine(dafl_stats *into, const dafl_stats *from)
{
    DAFL_FP_ENVIRONMENT();
    if (!into || !from)
        return DAFL_ERR_NULL_POINTER;
    dafl_stats_impl a, b;
    dafl_status st = dafl_stats_read(into, &a);
    if (st == DAFL_OK)
        st = dafl_stats_read(from, &b);
    if (st != DAFL_OK)
        return st;
    dafl_xacc_add(&a.loss, &b.loss);
    dafl_xacc_add(&a.weight, &b.weight);
    a.positives = dafl_saturating_add(a.positives, b.positives);
    a.elements = dafl_saturating_add(a.elements, b.elements);
    dafl_stats_write(into, &a);
    return DAFL_OK;
}

static int readable(const dafl_stats *stats, dafl_stats_impl *s)
{
    return stats && dafl_stats_read(stats, s) == DAFL_OK;
}

double dafl_stats_loss_sum(const dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_stats_impl s;
    return readable(stats, &s) ? dafl_xacc_to_double(&s.loss) : 0.0;
}

uint64_t dafl_stats_positives(const dafl_stats *stats)
{
    dafl_stats_impl s;
    return readable(stats, &s) ? s.positives : 0;
}

uint64_t dafl_stats_elements(const dafl_stats *stats)
{
    dafl_stats_impl s;
    return readable(stats, &s) ? s.elements : 0;
}

double dafl_stats_weight_sum(const dafl_stats *stats)
{
    DAFL_FP_ENVIRONMENT();
    dafl_stats_impl s;
    return readable(stats, &s) ? dafl_xacc_to_double(&s.weight) : 0.0;
}
