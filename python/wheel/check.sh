#!/bin/sh
# Installs a wheel of dafl (python/wheel/build.sh) into a fresh venv with PyPI's PyTorch,
# numpy and pytest, and tests it there, outside the source tree:
#   - dafl is imported from the venv (not from a build tree or the system);
#   - the libsleef the process maps is the wheel's own copy (dafl.libs/), never the
#     system's libsleef.so.3, and ldd of the extension finds nothing outside the venv
#     but glibc;
#   - every function dafl.h declares is in the extension (libdafl is linked into it);
#   - the pytest suite python/tests passes against the installed package.
#
# usage: python/wheel/check.sh WHEEL
# PYTHON picks the interpreter (default python3); DAFL_WHEEL_TORCH the torch requirement
# (default torch==2.13.0).
set -eu

here=$(cd "$(dirname "$0")/../.." && pwd)
whl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
python=${PYTHON:-python3}
torch=${DAFL_WHEEL_TORCH:-torch==2.13.0}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m venv "$work/venv"
"$work/venv/bin/pip" install -q "$torch" numpy pytest
"$work/venv/bin/pip" install -q "$whl"

cd "$work" # nothing of the source tree on sys.path
venv/bin/python - "$here/include/dafl.h" <<'EOF'
import os, re, subprocess, sys

import dafl, dafl._dafl

venv = os.path.realpath(sys.prefix) + os.sep
package = os.path.realpath(dafl.__file__)
assert package.startswith(venv), f"dafl imported from {package}, not from the venv {venv}"
ext = os.path.realpath(dafl._dafl.__file__)
libs = os.path.join(os.path.dirname(os.path.dirname(ext)), "dafl.libs") + os.sep

# The SLEEF mapped into this process: the wheel's copy only.
with open("/proc/self/maps") as maps:
    sleef = {line.split()[-1] for line in maps if "libsleef" in line}
assert sleef, "no libsleef mapped after import dafl"
for path in sleef:
    assert os.path.realpath(path).startswith(libs), f"{path} is not the wheel's libsleef"

# ldd: what the extension resolves outside the venv is glibc and the loader only.
ldd = subprocess.run(["ldd", ext], capture_output=True, text=True, check=True).stdout
for line in ldd.splitlines():
    if "=>" not in line:
        continue
    name, path = line.split("=>")[0].strip(), line.split("=>")[1].split("(")[0].strip()
    if not os.path.realpath(path).startswith(venv):
        assert re.match(r"lib(c|m|pthread|dl|rt)\.so\.\d+$", name), f"system library {line}"

# Every public function of dafl.h is linked into the extension.
with open(sys.argv[1]) as header:
    functions = re.findall(r"^DAFL_API .*?[ *](dafl_[a-z0-9_]*)\(", header.read(), re.M)
nm = subprocess.run(["nm", ext], capture_output=True, text=True, check=True).stdout
defined = {f[2] for f in (l.split() for l in nm.splitlines()) if len(f) == 3 and f[1] in "tT"}
missing = sorted(set(functions) - defined)
assert not missing, f"not in the extension: {missing}"

print(f"dafl {dafl.version()} from {package}; kernels {dafl.active_isa()}; SLEEF {sorted(sleef)};"
      f" {len(functions)} functions of dafl.h in {os.path.basename(ext)}")
EOF
venv/bin/python -m pytest -q -rs -p no:cacheprovider "$here/python/tests"
