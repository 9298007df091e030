/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 9

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0x29cd6af708008a35), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x6bf8ec6d2cdeab0f), /* penalty focal clamped */
    UINT64_C(0xed92c5422680a6b8), /* sigmoid focal g=2 */
    UINT64_C(0x7d7946bcb20ce30d), /* sigmoid focal g=2.5 */
    UINT64_C(0xace06d2a3eba826d), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0x065d3940b7f55a38), /* softmax focal NCHW g=2 */
    UINT64_C(0x29adcb16a5b032d5), /* softmax focal NHWC g=1.5 */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x29cd6af708008a35), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x6bf8ec6d2cdeab0f), /* penalty focal clamped */
    UINT64_C(0xed92c5422680a6b8), /* sigmoid focal g=2 */
    UINT64_C(0x7d7946bcb20ce30d), /* sigmoid focal g=2.5 */
    UINT64_C(0xace06d2a3eba826d), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xab8e4215600a536d), /* softmax focal NCHW g=2 */
    UINT64_C(0x21d03a9670509a61), /* softmax focal NHWC g=1.5 */
};

#endif
