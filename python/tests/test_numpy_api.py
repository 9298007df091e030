"""dafl's numpy functions: every C entry point, against hand values, float64 formulas,
and the statistics that combine shards into the bits of one call."""

import numpy as np
import pytest

import dafl
from conftest import assert_close, heatmap_batch


def softplus(z):
    return np.logaddexp(0.0, z)


def test_version_and_isa():
    assert dafl.version() == dafl.__version__
    assert dafl.version_number() == int(dafl.version().split(".")[0]) * 10000 + \
        int(dafl.version().split(".")[1]) * 100 + int(dafl.version().split(".")[2])
    assert dafl.active_isa() in ("scalar", "avx2", "avx512", "neon")
    assert dafl.isa_available("scalar")
    dafl.set_isa("scalar")
    assert dafl.active_isa() == "scalar"
    dafl.set_isa("auto")
    for name in ("avx2", "avx512", "neon"):
        if not dafl.isa_available(name):
            with pytest.raises(dafl.DaflError, match="ISA_UNAVAILABLE"):
                dafl.set_isa(name)
    with pytest.raises(ValueError):
        dafl.set_isa("sse9")
    assert "DAFL_ERR_NULL_POINTER" in dafl.status_string(1)


def test_threads_setting():
    dafl.set_num_threads(3)
    assert dafl.get_num_threads() == 3
    dafl.set_num_threads(0)
    assert dafl.get_num_threads() >= 1


def test_penalty_focal_hand_values():
    """x = 0: p = q = 1/2; y = 1: l = ln2/4; y = 0.5: ln2/64; y = 0: ln2/4 (one positive)."""
    x = np.zeros(3, np.float32)
    y = np.array([1.0, 0.5, 0.0], np.float32)
    loss, grad, stats = dafl.penalty_focal(x, y, return_stats=True)
    ln2 = np.log(2.0)
    assert_close(loss, ln2 * (0.25 + 1 / 64 + 0.25), 1e-6, 0)
    assert_close(grad, [-0.25 * (0.5 + ln2), (0.5 + ln2) / 64, 0.25 * (0.5 + ln2)], 1e-6, 0)
    assert stats.positives == 1 and stats.elements == 3
    loss2, none = dafl.penalty_focal(x, y, gradient=False)
    assert none is None and loss2 == loss


@pytest.mark.parametrize("gamma,alpha", [(2.0, 0.25), (0.0, -1.0), (1.5, 0.6)])
def test_sigmoid_focal_and_bce_vs_float64(rng, gamma, alpha):
    x = rng.normal(0, 4, 3000).astype(np.float32)
    y = rng.random(3000).astype(np.float32)
    xd, yd = x.astype(np.float64), y.astype(np.float64)
    p, q = np.exp(-softplus(-xd)), np.exp(-softplus(xd))
    ce = yd * softplus(-xd) + (1 - yd) * softplus(xd)
    m = yd * q + (1 - yd) * p
    at = 1.0 if alpha < 0 else alpha * yd + (1 - alpha) * (1 - yd)
    l = at * m ** gamma * ce
    loss, grad = dafl.sigmoid_focal(x, y, gamma=gamma, alpha=alpha, reduction="sum")
    assert_close(loss, l.sum(), 1e-6, 0)
    dl = at * (gamma * m ** (gamma - 1) * p * q * (1 - 2 * yd) * ce + m ** gamma * (p - yd)) \
        if gamma else at * (p - yd)
    assert_close(grad, dl, 1e-5, 1e-6)
    if gamma == 0 and alpha < 0:
        lb, gb = dafl.bce_with_logits(x, y, reduction="sum")
        assert lb == loss and np.array_equal(gb, grad)


def test_softmax_and_mse_numpy(rng):
    x = rng.normal(0, 2, (2, 4, 5)).astype(np.float32)
    labels = rng.integers(0, 4, (2, 5))
    loss, grad = dafl.softmax_focal(x, labels, gamma=0.0, reduction="sum")
    xd = x.astype(np.float64)
    logp = xd - np.log(np.exp(xd).sum(axis=1, keepdims=True))
    s = np.take_along_axis(logp, labels[:, None, :], axis=1)[:, 0]
    assert_close(loss, -s.sum(), 1e-6, 0)
    onehot = np.eye(4)[labels].transpose(0, 2, 1)
    assert_close(grad, np.exp(logp) - onehot, 1e-5, 1e-6)
    # channels last: the same pixels, classes contiguous
    l2, g2 = dafl.softmax_focal(np.ascontiguousarray(x.transpose(0, 2, 1)), labels,
                                gamma=0.0, reduction="sum", channels_last=True)
    assert_close(l2, loss, 1e-6, 0)
    assert_close(g2.transpose(0, 2, 1), grad, 1e-6, 1e-7)
    y = rng.random(x.shape).astype(np.float32)
    w = np.array([1.0, 0.0, 2.0, 0.5], np.float32)
    lm, gm = dafl.mse(x, y, weights=w, reduction="sum")
    wb = w[None, :, None]
    assert_close(lm, (wb * (xd - y) ** 2).sum(), 1e-6, 0)
    assert_close(gm, 2 * wb * (xd - y), 1e-6, 1e-7)


def test_targets():
    # SPEC 3's check values
    assert abs(dafl.gaussian_radius(10, 10, 0.7) - 2.7332) < 1e-4
    assert abs(dafl.gaussian_radius(10, 10, 0.7, "exact") - 0.8167) < 1e-4
    assert abs(dafl.gaussian_radius(20, 40, 0.3) - 13.5595) < 1e-4
    assert abs(dafl.gaussian_radius(20, 40, 0.3, "exact") - 5.7805) < 1e-4
    hm = np.zeros((9, 9), np.float32)
    dafl.draw_gaussian(hm, (4, 4), 2)
    assert hm[4, 4] == 1.0
    assert_close(hm[4, 2:7], [0.056135, 0.486752, 1, 0.486752, 0.056135], 1e-5, 0)
    hs = np.zeros((16, 16), np.float32)
    dafl.draw_gaussian_sigma(hs, (7.6, 3.2), 2.0)  # peak at (int(c + 0.5))
    assert hs[3, 8] == 1.0 and hs.max() == 1.0
    with pytest.raises(TypeError, match="'heatmap'"):
        dafl.draw_gaussian(np.zeros((4, 4)), (1, 1), 1)
    mask = np.zeros((5, 7), bool)
    mask[2, 3] = True
    d = dafl.distance_targets(mask, 2.0)
    yy, xx = np.mgrid[0:5, 0:7]
    assert_close(d, np.exp(-((yy - 2) ** 2 + (xx - 3) ** 2) / 8.0), 1e-6, 0)
    assert dafl.count_positives(np.array([1.0, 0.5, 1.0], np.float32)) == 2


def test_stats_shards_combine_to_the_bits_of_one_call(rng):
    y = heatmap_batch(rng, n=4, c=2, h=32, w=32)  # c*h*w a multiple of the block size
    x = rng.normal(0, 3, y.shape).astype(np.float32)
    whole, _, s_whole = dafl.penalty_focal(x, y, return_stats=True)
    shards = [dafl.penalty_focal(x[i:i + 1], y[i:i + 1], return_stats=True)[2]
              for i in range(4)]
    total = dafl.combine_stats(reversed(shards))
    assert dafl.reduce_stats(total, "positives") == whole
    assert total.positives == s_whole.positives == dafl.count_positives(y)
    again = dafl.Stats.from_bytes(total.to_bytes())
    assert dafl.reduce_stats(again, "sum") == dafl.penalty_focal(x, y, reduction="sum")[0]
    n = float(s_whole.positives)
    assert dafl.reduce_stats(total, "normalizer", n) == \
        dafl.penalty_focal(x, y, normalizer=n)[0]
    with pytest.raises(ValueError, match="bytes"):
        dafl.Stats.from_bytes(b"123")


def test_capabilities_report_what_dafl_runs():
    caps = dafl.capabilities()
    assert caps["active_isa"] == dafl.active_isa()
    assert set(caps["available"]) == {"scalar", "avx2", "avx512", "neon"}
    assert caps["available"]["scalar"] is True
    for name, available in caps["available"].items():
        assert available == dafl.isa_available(name)
        assert name in dafl.ISA_REQUIREMENTS
    assert caps["available"][caps["active_isa"]]
    assert caps["threads"] == dafl.get_num_threads() and caps["version"] == dafl.version()
    # DAFL_ISA, read by a fresh process at its first call
    from conftest import run_python
    out = run_python("import dafl; c = dafl.capabilities(); print(c['DAFL_ISA'], "
                     "c['active_isa'])", {"DAFL_ISA": "scalar"})
    assert out.split() == ["scalar", "scalar"]
