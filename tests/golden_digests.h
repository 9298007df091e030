/* Golden digests of tests/test_golden.c, one per case, for each class of results. */
#ifndef DAFL_GOLDEN_DIGESTS_H
#define DAFL_GOLDEN_DIGESTS_H

#include <stdint.h>

#define GOLDEN_CASES 15

static const uint64_t golden_fma[GOLDEN_CASES] = {
    UINT64_C(0x12088a3d606ace98), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x65dc087c99a16759), /* penalty focal clamped */
    UINT64_C(0x497856a5b9aabe79), /* sigmoid focal g=2 */
    UINT64_C(0xff3f61f1b15aaa34), /* sigmoid focal g=2.5 */
    UINT64_C(0xa0b88136e15821ca), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0x2683efb540980938), /* penalty focal from keypoints */
    UINT64_C(0x14698c5205442761), /* penalty focal logits bf16 */
    UINT64_C(0xeb3a08a7cc6ac9f6), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xc7c9d5f12efad78d), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

static const uint64_t golden_non_fma[GOLDEN_CASES] = {
    UINT64_C(0x12088a3d606ace98), /* penalty focal logits */
    UINT64_C(0xea2aa832d404093d), /* penalty focal probabilities */
    UINT64_C(0x65dc087c99a16759), /* penalty focal clamped */
    UINT64_C(0x497856a5b9aabe79), /* sigmoid focal g=2 */
    UINT64_C(0xff3f61f1b15aaa34), /* sigmoid focal g=2.5 */
    UINT64_C(0xa0b88136e15821ca), /* bce */
    UINT64_C(0xcfba3fd1f279ee5a), /* mse */
    UINT64_C(0xcebd2462c8ba5c7f), /* softmax focal NCHW g=2 */
    UINT64_C(0x8de4f1aed5a3e673), /* softmax focal NHWC g=1.5 */
    UINT64_C(0xb9ea705945732197), /* keypoints rendered */
    UINT64_C(0x2683efb540980938), /* penalty focal from keypoints */
    UINT64_C(0x14698c5205442761), /* penalty focal logits bf16 */
    UINT64_C(0xeb3a08a7cc6ac9f6), /* sigmoid focal g=2 f16 (f32 targets) */
    UINT64_C(0xc7c9d5f12efad78d), /* bce bf16 (f32 targets) */
    UINT64_C(0xccb1fb7232d78eb6), /* mse f16 */
};

#endif
