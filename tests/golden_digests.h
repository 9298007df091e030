/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 15

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0x992ffd10c91c2966), /* penalty focal logits */
    UINT64_C(0x289baacc882f2b11), /* penalty focal probabilities */
    UINT64_C(0x4bae8bf5cfe32854), /* penalty focal clamped */
    UINT64_C(0x2d1cc08393105e21), /* sigmoid focal g=2 */
    UINT64_C(0xfff23fc4449d3c19), /* sigmoid focal g=2.5 */
    UINT64_C(0xebb397087f976d18), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0xa4301e53f58132c9), /* penalty focal from keypoints */
    UINT64_C(0x8977eb8e09047539), /* penalty focal logits bf16 */
    UINT64_C(0xbacdda44fb744131), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xfbcf11516465a807), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x992ffd10c91c2966), /* penalty focal logits */
    UINT64_C(0x289baacc882f2b11), /* penalty focal probabilities */
    UINT64_C(0x4bae8bf5cfe32854), /* penalty focal clamped */
    UINT64_C(0x2d1cc08393105e21), /* sigmoid focal g=2 */
    UINT64_C(0xfff23fc4449d3c19), /* sigmoid focal g=2.5 */
    UINT64_C(0xebb397087f976d18), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0xa4301e53f58132c9), /* penalty focal from keypoints */
    UINT64_C(0x8977eb8e09047539), /* penalty focal logits bf16 */
    UINT64_C(0xbacdda44fb744131), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xfbcf11516465a807), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

#endif
