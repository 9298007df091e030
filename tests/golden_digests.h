/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 9

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0xf5d9ef8485d5b92b), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0xe92fe57146b6858d), /* penalty focal clamped */
    UINT64_C(0x81a7b24cfb89833a), /* sigmoid focal g=2 */
    UINT64_C(0x17f266967e214155), /* sigmoid focal g=2.5 */
    UINT64_C(0xf98be2e66231b582), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0x065d3940b7f55a38), /* softmax focal NCHW g=2 */
    UINT64_C(0xc03a303c0bc4e788), /* softmax focal NHWC g=1.5 */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x7e5f26453e8a00a0), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0xb5f33502c2cc86fe), /* penalty focal clamped */
    UINT64_C(0x58045fd4ba9588c2), /* sigmoid focal g=2 */
    UINT64_C(0x52710d0a8fd89141), /* sigmoid focal g=2.5 */
    UINT64_C(0x6a79880d3f35b135), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xab8e4215600a536d), /* softmax focal NCHW g=2 */
    UINT64_C(0x9c19150132d175b1), /* softmax focal NHWC g=1.5 */
};

#endif
