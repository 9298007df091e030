/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 11

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0x7a277ada6d5f54b7), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x285af87d2b0f97ca), /* penalty focal clamped */
    UINT64_C(0xb1e3e25b03d02fd1), /* sigmoid focal g=2 */
    UINT64_C(0x6a1ed8eed3d4742c), /* sigmoid focal g=2.5 */
    UINT64_C(0x5ab8e5f79f8e4dd3), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0x11bc45a699ab94a3), /* penalty focal from keypoints */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x7a277ada6d5f54b7), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x285af87d2b0f97ca), /* penalty focal clamped */
    UINT64_C(0xb1e3e25b03d02fd1), /* sigmoid focal g=2 */
    UINT64_C(0x6a1ed8eed3d4742c), /* sigmoid focal g=2.5 */
    UINT64_C(0x5ab8e5f79f8e4dd3), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0x11bc45a699ab94a3), /* penalty focal from keypoints */
};

#endif
