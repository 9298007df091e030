#!/usr/bin/env python3
"""Writes the seed corpus of the libFuzzer harnesses: tests/fuzz/corpus/<harness>/<name>.

Each seed is an ordinary call in the byte format that the harness's comment describes
(fuzz_common.h: a zero byte is always the default, sizes are 16-bit little-endian, 0xff
then an index picks a huge size).  The fuzzer mutates from these; they are also what
tests/fuzz/run.sh starts from.  Run it again after changing a harness's byte format.
"""
import os
import random
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# fz_select_isa: byte % 5 -> auto, avx2, avx512, neon, scalar
AUTO, AVX2, SCALAR = 0, 1, 4
# fz_param: byte 1 + index into fz_special_floats
F_1E4, F_8_5, F_3_5, F_0_75, F_NAN, F_INF, F_NEG = 11, 8, 29, 30, 16, 18, 13
def grid(v):  # fz_param's grid: v in steps of 1/8 from 0
    return 34 + int(v * 8)


def u16(v):
    return struct.pack('<H', v)


def huge(index):
    return bytes([0xff, index])


def payload(seed, n):
    rng = random.Random(seed)
    return bytes(rng.randrange(256) for _ in range(n))


def elementwise(count, ptrs=0, x_mode=0, y_mode=0, seed=1, n=96):
    return (count if isinstance(count, bytes) else u16(count)) + bytes([ptrs, x_mode, y_mode]) \
        + payload(seed, n)


def seeds():
    s = {}
    # penalty focal: isa, struct_size, alpha, beta, pos_w, neg_w, mode, eps, reduction,
    # normalizer, grad_scale, flags
    pf = s.setdefault('penalty_focal', {})
    pf['defaults-37'] = bytes([AVX2] + [0] * 11) + elementwise(37)
    pf['none-1100'] = bytes([AVX2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]) + elementwise(1100, seed=2)
    pf['probabilities-70'] = bytes([AVX2, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0]) \
        + elementwise(70, x_mode=3)
    pf['clamped-33'] = bytes([AVX2, 0, 0, 0, 0, 0, 3, F_1E4, 1, 0, 0, 0]) + elementwise(33, seed=3)
    pf['real-exponents'] = bytes([AVX2, 0, F_8_5, F_3_5, 0, 0, 0, 0, 2, 0, 0, 0]) \
        + elementwise(50, seed=4)
    pf['in-place'] = bytes([AVX2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]) + elementwise(21, ptrs=0x40)
    pf['trust-raw'] = bytes([AVX2, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 2]) \
        + elementwise(40, x_mode=1, y_mode=2)
    pf['nan-alpha'] = bytes([AVX2, 0, F_NAN] + [0] * 9) + elementwise(5)
    pf['huge-count'] = bytes([AVX2] + [0] * 11) + elementwise(huge(0))
    pf['old-struct'] = bytes([AVX2, 1 + 12] + [0] * 10) + elementwise(17)
    # sigmoid focal: isa, struct_size, gamma, alpha, reduction, normalizer, grad_scale, flags
    sf = s.setdefault('sigmoid_focal', {})
    sf['defaults-37'] = bytes([AVX2] + [0] * 7) + elementwise(37)
    sf['gamma-1.5-soft'] = bytes([AVX2, 0, grid(1.5), F_0_75, 2, 0, 0, 0]) \
        + elementwise(1030, seed=5)
    sf['bce-equivalent'] = bytes([AVX2, 0, 1, F_NEG, 3, grid(3), 0, 0]) + elementwise(64, seed=6)
    sf['normalizer'] = bytes([AVX2, 0, 0, 0, 5, grid(7.5), grid(0.5), 0]) + elementwise(99, seed=7)
    sf['huge-count'] = bytes([SCALAR] + [0] * 7) + elementwise(huge(5))
    # BCE: isa, struct_size, pos_weight, reduction, normalizer, grad_scale, flags
    bce = s.setdefault('bce', {})
    bce['defaults-37'] = bytes([AVX2] + [0] * 6) + elementwise(37)
    bce['pos-weight-none'] = bytes([AVX2, 0, grid(3), 1, 0, 0, 0]) + elementwise(2060, seed=8)
    bce['raw-logits'] = bytes([AVX2, 0, 0, 2, 0, 0, 0]) + elementwise(45, x_mode=1)
    bce['bad-target'] = bytes([AVX2] + [0] * 6) + elementwise(300, y_mode=1, seed=9)
    # MSE: isa, struct_size, weights mode, weight values, reduction, normalizer,
    # grad_scale, flags, n, c, hw, pointers, x mode, y mode
    def mse_seed(head, n, c, hw, tail, seed, size):
        return bytes(head) + u16(n) + u16(c) + u16(hw) + bytes(tail) + payload(seed, size)
    mse = s.setdefault('mse', {})
    mse['defaults'] = mse_seed([AVX2, 0, 0, 0, 0, 0, 0, 0], 2, 3, 20, [0, 0, 0], 10, 64)
    mse['channel-weights-none'] = mse_seed([AVX2, 0, 1, 0, 1, 0, 0, 0], 2, 3, 37, [0, 2, 0],
                                           11, 64)
    mse['plane-weights'] = mse_seed([AVX2, 0, 2, 0, 2, 0, 0, 0], 4, 5, 51, [0, 0, 0], 12, 64)
    mse['wrong-weight-count'] = mse_seed([AVX2, 0, 3, 7, 2, 0, 0, 0], 1, 4, 9, [0, 0, 0],
                                         13, 32)
    mse['huge'] = bytes([AVX2, 0, 0, 0, 0, 0, 0, 0]) + huge(0) + u16(3) + u16(3) \
        + bytes([0, 0, 0]) + payload(14, 16)
    # softmax focal: isa, struct_size, gamma, layout, ignore, weight values, reduction,
    # normalizer, grad_scale, flags, n, c, hw, label mode, pointers, x mode
    sm = s.setdefault('softmax_focal', {})
    sm['nchw'] = mse_seed([AVX2, 0, 0, 0, 0, 0, 0, 0, 0, 0], 2, 3, 40, [0, 0, 0], 15, 96)
    sm['nhwc-weights-none'] = mse_seed([AVX2, 0, 0, 2, 1, 1, 1, 0, 0, 0], 1, 7, 33,
                                       [0, 0, 2], 16, 96)
    sm['gamma-real-1030'] = mse_seed([AVX2, 0, grid(2.5), 0, 0, 0, 3, 0, 0, 0], 1, 2, 1030,
                                     [0, 0, 0], 17, 96)
    sm['bad-labels'] = mse_seed([AVX2, 0, 0, 0, 4, 0, 0, 0, 0, 0], 1, 5, 19, [3, 0, 0],
                                18, 64)
    sm['huge-classes-empty'] = bytes([AVX2, 0, 0, 0, 0, 0, 0, 0, 0, 0]) + u16(0) + huge(0) \
        + u16(0) + bytes([0, 0, 0]) + payload(19, 16)
    # statistics: isa, then operations (code, index, operands)
    st = s.setdefault('stats', {})
    st['loss-combine-reduce'] = bytes([
        AVX2,
        1, 0, 0, *u16(300), 0, 0, 0,  # loss 0: penalty focal
        1, 1, 2, *u16(96), 2, 0, 1,  # loss 1: softmax
        2, 0, 1,  # combine 0 += 1
        3, 0, 3, 0, 0,  # reduce 0, MEAN
        4, 0, 0, 7, 0]) + payload(20, 64)  # accessors; self-combine
    st['shards'] = bytes([AVX2, 6, 2, 0, 1, *u16(300), 0, 0, 1, 3, 2, 0, 0]) + payload(21, 64)
    st['garbage'] = bytes([SCALAR, 5, 3, 2, 0, 3, 3, 3, 0, 0, 0, 4, 3, 0]) + payload(22, 64)
    # targets: operation (0 radius, 1 draw_gaussian, 2 draw_gaussian_sigma, 3 distance)
    tg = s.setdefault('targets', {})
    tg['radius'] = bytes([0, 0, 0, 0, 0, 0])
    tg['radius-exact'] = bytes([4, 170, 200, 6, 2, 0])  # 10.1 x 21.4, overlap 0.7
    tg['draw-border'] = bytes([1]) + u16(9) + u16(13) + bytes([1, 150, 133, 0, 0, 0]) \
        + payload(23, 64)
    tg['draw-sigma'] = bytes([2]) + u16(12) + u16(7) + bytes([0, 0, 0, 1, 0]) + payload(24, 64)
    tg['distance'] = bytes([3]) + u16(11) + u16(14) + bytes([0, 20, 0]) + payload(25, 128)
    # dispatch: (operation, value + 1) pairs
    s.setdefault('dispatch', {})['switches'] = bytes([
        0, 2, 4, 0, 0, 3, 4, 0, 0, 5, 1, 9, 2, 10, 3, 3, 4, 0, 0, 1, 4, 0, 2, 0xfe, 3, 1])
    # count_positives: isa, count, flags, pointers, target mode
    cp = s.setdefault('count_positives', {})
    cp['valid-100'] = bytes([AVX2]) + u16(100) + bytes([0, 0, 0]) + payload(26, 64)
    cp['rare-bad-2000'] = bytes([AVX2]) + u16(2000) + bytes([0, 0, 1]) + payload(27, 64)
    cp['trusted-raw'] = bytes([AVX2]) + u16(33) + bytes([2, 0, 2]) + payload(28, 64)
    cp['huge'] = bytes([AVX2]) + huge(4) + bytes([0, 0, 0])
    # pool: threads, loss, size, host mode, fault, pieces, piece sizes, shuffle, payload
    pl = s.setdefault('pool', {})
    pl['pool-4-threads'] = bytes([2, 0]) + u16(5000) + bytes([0, 0, 0]) + payload(29, 64)
    for loss in range(5):
        pl['host-valid-%d' % loss] = bytes([1, loss]) + u16(777 * loss) \
            + bytes([1, 0, 6, 3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5]) + payload(30 + loss, 64)
    for fault in range(1, 7):
        pl['host-fault-%d' % fault] = bytes([3, fault % 5]) + u16(1234) \
            + bytes([2, fault, 5, 2, 7, 1, 8, 2, 8, 1, 8, 2]) + payload(40 + fault, 64)
    # keypoints: op (even render, odd loss), isa, n, c, h, w, count, struct-size variant,
    # per keypoint image, channel, x, y, size, k, style; then mode, reduction, alpha,
    # beta, pointer flags; the payload makes the logits.  fz_param_double's grid:
    # byte 143 + 8j is 3j (integers for "umich").
    def kp(image, channel, x, y, size, k=0, style=0):
        return bytes([image, channel, x, y, size, k, style])

    def kp_seed(op, n, c, h, w, points, tail=b'', variant=0, seed=30):
        return bytes([op, AVX2]) + u16(n) + u16(c) + u16(h) + u16(w) + \
            bytes([len(points), variant]) + b''.join(points) + tail + payload(seed, 96)
    k = s.setdefault('keypoints', {})
    k['render-defaults'] = kp_seed(0, 2, 3, 17, 23, [kp(0, 0, 0, 0, 0), kp(1, 2, 151, 159, 167)])
    k['render-borders'] = kp_seed(0, 1, 2, 40, 33, [
        kp(0, 0, 143, 143, 175), kp(0, 1, 135, 199, 159, 4), kp(0, 1, 151, 151, 152, 0, 2),
        kp(0, 0, 250, 131, 160, 0, 2)])
    k['loss-defaults'] = kp_seed(1, 2, 4, 32, 32, [kp(0, 1, 151, 159, 167), kp(1, 3, 175, 0, 0)],
                                 bytes([0, 0, 0, 0, 0]))
    k['loss-probabilities-mean'] = kp_seed(1, 1, 2, 37, 29, [kp(0, 1, 151, 159, 157, 0, 2)],
                                           bytes([2, 3, 0, 0, 0]), seed=31)
    k['loss-none-forward'] = kp_seed(1, 3, 1, 9, 40, [kp(2, 0, 151, 151, 151)],
                                     bytes([3, 1, 0, 0, 2]), seed=32)
    k['render-distance'] = kp_seed(0, 1, 2, 21, 30, [kp(0, 0, 151, 159, 157, 0, 3),
                                                     kp(0, 0, 175, 151, 157, 0, 3)])
    k['loss-distance'] = kp_seed(1, 2, 2, 19, 27, [kp(1, 1, 151, 151, 160, 4, 3)],
                                 bytes([0, 0, 0, 0, 0]), seed=33)
    k['bad-image'] = kp_seed(1, 2, 2, 8, 8, [kp(0, 0, 0, 0, 0), kp(5, 0, 0, 0, 0)])
    k['bad-struct-size'] = kp_seed(0, 1, 1, 8, 8, [kp(0, 0, 0, 0, 0), kp(0, 0, 0, 0, 0)],
                                   variant=2)
    k['huge'] = bytes([0, AVX2]) + huge(0) + u16(2) + u16(8) + u16(8) + bytes([0, 0])
    # half precision: isa, loss (0 penalty, 1 sigmoid, 2 BCE, 3 MSE), dtypes of input,
    # target, gradient (byte % 8: 0 float32, 2 bfloat16, 5 float16, 7 invalid),
    # reduction, penalty focal's mode, count, pointers, x mode (bit 0: raw half bits),
    # y mode, payload
    hp = s.setdefault('half', {})
    F32, BF16, F16, BAD = 0, 2, 5, 7

    def half_seed(isa, loss, dtypes, count, reduction=0, mode=0, ptrs=0, x_mode=0, y_mode=0,
                  seed=41, n=128):
        head = bytes([isa, loss] + list(dtypes) + [reduction, mode])
        tail = bytes([ptrs, x_mode, y_mode]) + payload(seed, n)
        return head + (count if isinstance(count, bytes) else u16(count)) + tail

    hp['penalty-bf16-1100'] = half_seed(AVX2, 0, (BF16, BF16, BF16), 1100)
    hp['penalty-bf16-logits-f32-targets'] = half_seed(AVX2, 0, (BF16, F32, BF16), 77, seed=42)
    hp['penalty-f16-probabilities'] = half_seed(AVX2, 0, (F16, F16, F16), 70, mode=2, seed=43)
    hp['sigmoid-f16-raw'] = half_seed(AVX2, 1, (F16, F32, F16), 45, x_mode=1, seed=44)
    hp['bce-bf16-none'] = half_seed(AVX2, 2, (BF16, BF16, F32), 33, reduction=1, seed=45)
    hp['mse-f16-overflow'] = half_seed(AVX2, 3, (F16, F16, F16), 64, x_mode=1, seed=46)
    hp['scalar-bf16-raw'] = half_seed(SCALAR, 0, (BF16, BF16, BF16), 19, x_mode=1, seed=47)
    hp['invalid-dtype'] = half_seed(AVX2, 1, (F32, BAD, F32), 12, seed=48)
    hp['huge-count'] = half_seed(AVX2, 2, (BF16, BF16, BF16), huge(1))
    return s


def main():
    for harness, files in seeds().items():
        d = os.path.join(HERE, 'corpus', harness)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), 'wb') as f:
                f.write(data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
