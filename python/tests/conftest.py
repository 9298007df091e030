"""Shared helpers of the dafl Python tests: comparisons, bit digests, subprocesses.

The tests import the dafl found on sys.path: the build tree under `meson test`
(PYTHONPATH=<build>/python), or an installed package (pip, python3-dafl)."""

import hashlib
import os
import shlex
import signal
import subprocess
import sys

import numpy as np
import pytest

import dafl


def assert_close(actual, expected, rtol=1e-5, atol_frac=1e-6, what="value"):
    """|actual - expected| <= rtol*|expected| + atol_frac*max|expected| everywhere (plus
    float32's smallest normal: a float32 result cannot resolve less), and the same
    positions NaN / infinite.  Accepts numpy arrays, tensors and scalars."""
    a = np.asarray(_numpy(actual), dtype=np.float64)
    e = np.asarray(_numpy(expected), dtype=np.float64)
    assert a.shape == e.shape, f"{what}: shape {a.shape} != {e.shape}"
    finite = np.isfinite(e)
    assert np.array_equal(np.isnan(a), np.isnan(e)), f"{what}: NaN positions differ"
    assert np.array_equal(a[~finite & ~np.isnan(e)], e[~finite & ~np.isnan(e)]), \
        f"{what}: infinities differ"
    if not finite.any():
        return
    scale = np.max(np.abs(e[finite]))
    err = np.abs(a[finite] - e[finite])
    bound = rtol * np.abs(e[finite]) + atol_frac * scale + np.finfo(np.float32).tiny
    worst = np.argmax(err - bound)
    assert np.all(err <= bound), (
        f"{what}: max error {err[worst]:.3g} at expected {e[finite][worst]:.9g} "
        f"(got {a[finite][worst]:.9g}), bound {bound[worst]:.3g}")


def _numpy(x):
    if hasattr(x, "detach"):
        x = x.detach()
        if str(x.dtype) == "torch.bfloat16":  # numpy has no bfloat16
            x = x.float()
        return x.numpy()
    return x


def bits(*arrays):
    """A digest of the exact bits of float32 results (every NaN counted as one value)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(_numpy(a), dtype=np.float32)
        a = np.where(np.isnan(a), np.float32(np.nan), a)
        h.update(a.tobytes())
    return h.hexdigest()


def python_command():
    """The command that starts a fresh interpreter like this one: sys.executable, or
    DAFL_TEST_PYTHON (split like a shell line) where this interpreter runs under an
    emulator that the kernel cannot start by itself (python/wheel/check_qemu.sh)."""
    return shlex.split(os.environ.get("DAFL_TEST_PYTHON", "")) or [sys.executable]


def run_python(code, env_extra=None, timeout=120):
    """Run code in a fresh interpreter (python_command()) that imports the same dafl;
    returns stdout.  A hang fails the test after `timeout` seconds; the whole process
    group (a DataLoader's workers too) is killed then."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(dafl.__file__))] + sys.path[1:])
    env.update(env_extra or {})
    proc = subprocess.Popen(python_command() + ["-c", code], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"subprocess hung (killed after {timeout} s); its output so far:\n"
                    f"{out}\n{err}")
    assert proc.returncode == 0, f"subprocess failed ({proc.returncode}):\n{out}\n{err}"
    return out


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


def heatmap_batch(rng, n=2, c=3, h=24, w=20, peaks=3):
    """CenterNet targets drawn with dafl.draw_gaussian: exact 1.0 at each peak."""
    y = np.zeros((n, c, h, w), dtype=np.float32)
    for i in range(n):
        for k in range(c):
            for _ in range(peaks):
                dafl.draw_gaussian(y[i, k], (int(rng.integers(w)), int(rng.integers(h))),
                                   int(rng.integers(1, 5)))
    return y


@pytest.fixture(autouse=True)
def default_threads():
    """Every test starts and ends at dafl's default thread count and ISA."""
    yield
    dafl.set_num_threads(0)
    dafl.set_isa("auto")
