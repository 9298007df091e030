/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 15

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0x176cbfaa5d2146f0), /* penalty focal logits */
    UINT64_C(0x289baacc882f2b11), /* penalty focal probabilities */
    UINT64_C(0x12137255866dc3e6), /* penalty focal clamped */
    UINT64_C(0x19352c1af3968e2c), /* sigmoid focal g=2 */
    UINT64_C(0xfbebe51a445e38ab), /* sigmoid focal g=2.5 */
    UINT64_C(0xebb397087f976d18), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x520fdd612ea6dc3c), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0xdace74ac3e3499f8), /* penalty focal from keypoints */
    UINT64_C(0x890bec83cc7bf678), /* penalty focal logits bf16 */
    UINT64_C(0x83e77196a552f498), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xfbcf11516465a807), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x176cbfaa5d2146f0), /* penalty focal logits */
    UINT64_C(0x289baacc882f2b11), /* penalty focal probabilities */
    UINT64_C(0x12137255866dc3e6), /* penalty focal clamped */
    UINT64_C(0x19352c1af3968e2c), /* sigmoid focal g=2 */
    UINT64_C(0xfbebe51a445e38ab), /* sigmoid focal g=2.5 */
    UINT64_C(0xebb397087f976d18), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x520fdd612ea6dc3c), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0xdace74ac3e3499f8), /* penalty focal from keypoints */
    UINT64_C(0x890bec83cc7bf678), /* penalty focal logits bf16 */
    UINT64_C(0x83e77196a552f498), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xfbcf11516465a807), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

#endif
