#!/bin/sh
# Tests a cross-built AArch64 wheel of dafl (python/wheel/build.sh --cross
# cross/aarch64-linux-gnu.ini) under qemu-aarch64, on Debian's arm64 Python 3.11 with
# numpy and pytest from PyPI (PyTorch is left out: under emulation it would take most of
# CI's time):
#   - the wheel unpacked into a site folder of its own, dafl imported from there;
#   - the libsleef the process maps is the wheel's copy (dafl.libs/), never the system's;
#   - every function dafl.h declares is in the extension;
#   - the numpy API tests (python/tests/test_numpy_api.py) pass, and the scalar and NEON
#     kernels give the same bits on a batch with Gaussian targets and 2 threads.
#
# usage: python/wheel/check_qemu.sh WHEEL
# Needs (Debian, arm64 added with dpkg --add-architecture): qemu-user, libc6:arm64,
# libpython3.11-stdlib:arm64 (libpython3.11-dev:arm64 brings it), binutils-aarch64-linux-gnu,
# python3-venv; apt-get download fetches python3.11-minimal:arm64 (the interpreter, not
# installed: it cannot sit beside the amd64 one); PyPI gives numpy and pytest.
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
whl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
case $whl in
*_aarch64.whl) ;;
*) echo "usage: $0 WHEEL (an aarch64 wheel)" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

apt-get download -q python3.11-minimal:arm64 > /dev/null
dpkg-deb -x python3.11-minimal_*_arm64.deb interpreter
/usr/bin/python3 -m venv tools
tools/bin/pip download -q --only-binary=:all: --python-version 3.11 \
    --platform manylinux2014_aarch64 -d downloads numpy pytest
mkdir site
for w in "$work"/downloads/*.whl "$whl"; do
    /usr/bin/python3 -m zipfile -e "$w" site
done

guest() {
    env PYTHONHOME=/usr PYTHONPATH="$work/site" PYTHONDONTWRITEBYTECODE=1 \
        qemu-aarch64 -L / "$work/interpreter/usr/bin/python3.11" "$@"
}

guest - "$here/include/dafl.h" "$work/site" <<'EOF'
import hashlib, os, platform, re, subprocess, sys

import numpy as np
import dafl, dafl._dafl

site = os.path.realpath(sys.argv[2]) + os.sep
assert platform.machine() == "aarch64", platform.machine()
assert os.path.realpath(dafl.__file__).startswith(site), dafl.__file__
with open("/proc/self/maps") as maps:
    sleef = {line.split()[-1] for line in maps if "libsleef" in line}
assert sleef and all(os.path.realpath(p).startswith(site + "dafl.libs" + os.sep)
                     for p in sleef), sleef

with open(sys.argv[1]) as header:
    functions = re.findall(r"^DAFL_API .*?[ *](dafl_[a-z0-9_]*)\(", header.read(), re.M)
print(f"dafl {dafl.version()} on {platform.machine()}, kernels {dafl.active_isa()}, "
      f"SLEEF {sorted(sleef)}, {len(functions)} functions to find")
print("extension", os.path.realpath(dafl._dafl.__file__))

x = np.random.default_rng(1).standard_normal((4, 17, 128, 128)).astype(np.float32)
y = np.zeros_like(x)
for i in range(40):
    dafl.draw_gaussian(y[i % 4, i % 17], (3 * i % 128, 7 * i % 128), 2 + i % 9)
dafl.set_num_threads(2)
digests = {}
for isa in ("scalar", "neon"):
    dafl.set_isa(isa)
    loss, grad = dafl.penalty_focal(x, y)
    digests[isa] = hashlib.sha256(np.float32(loss).tobytes() + grad.tobytes()).hexdigest()
assert len(set(digests.values())) == 1, digests
print("scalar and neon: the same bits", digests["neon"][:16])
EOF

ext=$(echo site/dafl/_dafl*.so)
nm=$(command -v aarch64-linux-gnu-nm || echo nm)
for f in $(sed -n 's/^DAFL_API .*[ *]\(dafl_[a-z0-9_]*\)(.*/\1/p' "$here/include/dafl.h"); do
    "$nm" "$ext" | grep -q " [tT] $f\$" || { echo "not in the extension: $f" >&2; exit 1; }
done

# The tests that start a fresh interpreter start it under qemu-aarch64 too: a machine
# without binfmt_misc registration cannot exec the arm64 interpreter by itself.
export DAFL_TEST_PYTHON="qemu-aarch64 -L / $work/interpreter/usr/bin/python3.11"
guest -m pytest -q -p no:cacheprovider "$here/python/tests/test_numpy_api.py"
