#!/usr/bin/env python3
"""Operations per element for each FP pipe class, from tools/step_count.c's profile.

    tools/pipe_ops.py PROFILE.tsv --elements N [--functions K]

PROFILE.tsv is what step_count wrote (executed instruction addresses of one shared object
and their counts); N is the number of elements the traced calls processed (loss_call's
65536 per call).  The object is disassembled with objdump; every executed instruction is
classified by what it occupies on the Zen 3 / Zen 4 floating-point unit (four pipes,
FP0-FP3, each 256 bits wide):

  fma/mul   vfmadd*, vmulps, vscalefps, ...         FP0 and FP1
  add       vaddps, vsubps, vmin/vmax, vcmpps       FP2 and FP3 (cmp/min/max: FP0/FP1 too)
  logic     vandps, vpand, vpternlogd, blends       any of the four
  integer   vpaddd, vpsubd, shifts, vpcmp*          any of the four (shifts: FP1/FP2)
  shuffle   vperm*, vpshufb, vunpck*, vpack*        FP1 and FP2
  convert   vcvt*, vroundps, vrndscaleps            FP2 and FP3 (some FP0/FP1)
  divide    vdivps, vsqrtps, vrcp14ps               FP1 (not pipelined)
  mask      k* instructions (AVX-512 mask registers)

A 512-bit operation occupies a 256-bit pipe twice on Zen 4 ("pipe slots" counts it as
2); loads and stores, register moves (renamed away) and the integer-register work are
counted apart.  The cycle bound is the larger of the slots over the four pipes and the
fma/mul slots over their two: a lower bound that ignores latency and the front end.
"""
import argparse
import collections
import re
import subprocess
import sys

CLASSES = ["fma/mul", "add", "logic", "integer", "shuffle", "convert", "divide", "mask"]

RULES = [  # (class, regular expression on the mnemonic), first match wins
    ("mask", r"^k(and|or|xor|andn|not|mov|shift|test|ortest|unpck|add)"),
    ("divide", r"^v(div|sqrt|rcp|rsqrt)"),
    ("fma/mul", r"^v(fn?m(add|sub)|fmaddsub|fmsubadd|mul[ps][sd]|scalef)"),
    ("convert", r"^v(cvt|round|rndscale|getexp|getmant|reduce|fixupimm)"),
    ("shuffle", r"^v(perm|pshuf|shuf|unpck|punpck|pack|insert|extract|palignr|align|"
                r"broadcast|pbroadcast|pmovzx|pmovsx|pcompress|pexpand|compress|expand|"
                r"movshdup|movsldup|movddup|movhlps|movlhps|pmov[a-z]*db|pmov[a-z]*wb)"),
    ("add", r"^v(add|sub|min|max|cmp|hadd|hsub|comis|ucomis|range)"),
    ("logic", r"^v(and|andn|or|xor|pand|pandn|por|pxor|pternlog|blend|pblend|test|ptest)"),
    ("integer", r"^vp(add|sub|sll|srl|sra|cmp|min|max|mul|abs|sign|avg|sad|madd|lzcnt|"
                r"popcnt|rol|ror|shld|shrd|movm|movb2m|movd2m|movq2m|movw2m)"),
]
MOVES = re.compile(r"^v?(mov(aps|ups|apd|upd|dqa|dqu|dqa32|dqa64|dqu8|dqu16|dqu32|dqu64|"
                   r"ss|sd|d|q)|lddqu|maskmov|pmaskmov|maskmovps)")


def classify(mnemonic):
    for cls, rx in RULES:
        if re.match(rx, mnemonic):
            return cls
    return None


def load_profile(path):
    maps, counts = [], {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "map":
                maps.append((int(parts[1], 16), int(parts[2], 16), int(parts[3], 16),
                             " ".join(parts[4:])))
            else:
                counts[int(parts[0], 16)] = int(parts[1])
    if not maps:
        sys.exit(f"{path}: no 'map' line (was it written by tools/step_count?)")
    return maps, counts


def load_segments(obj):
    """(file offset, virtual address, size) of each LOAD segment."""
    out = subprocess.run(["readelf", "-lW", obj], check=True, capture_output=True,
                         text=True).stdout
    segs = []
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "LOAD":
            segs.append((int(f[1], 16), int(f[2], 16), int(f[4], 16)))
    return segs


def disassemble(obj):
    """{virtual address: (mnemonic, operands, function)} of the object's code."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-M", "att", obj],
                         check=True, capture_output=True, text=True).stdout
    insns, func = {}, "?"
    for line in out.splitlines():
        m = re.match(r"^[0-9a-f]+ <(.+)>:$", line)
        if m:
            func = m.group(1)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(\S+)\s*(.*)$", line)
        if m:
            insns[int(m.group(1), 16)] = (m.group(2), m.group(3), func)
    return insns


def width_slots(operands):
    """256-bit pipe slots a vector operation takes: 2 for zmm, else 1."""
    return 2 if "%zmm" in operands else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("profile")
    ap.add_argument("--elements", type=float, required=True,
                    help="elements processed by the counted calls")
    ap.add_argument("--functions", type=int, default=8,
                    help="functions to list, by instructions executed")
    args = ap.parse_args()

    maps, counts = load_profile(args.profile)
    obj = maps[0][3]
    segs = load_segments(obj)
    insns = disassemble(obj)

    total = collections.Counter()
    per_func = collections.Counter()
    unknown = 0
    for addr, n in counts.items():
        start, _, offset, _ = next(m for m in maps if m[0] <= addr < m[1])
        file_off = addr - start + offset
        seg = next((s for s in segs if s[0] <= file_off < s[0] + s[2]), None)
        if seg is None:
            unknown += n
            continue
        insn = insns.get(file_off - seg[0] + seg[1])
        if insn is None:
            unknown += n
            continue
        mnem, ops, func = insn
        total["instructions"] += n
        per_func[func] += n
        cls = classify(mnem)
        mem = "(" in ops
        if cls:
            total[cls] += n * width_slots(ops)
            total["pipe slots"] += n * width_slots(ops)
            if mem and cls != "mask":
                total["loads"] += n  # a folded memory operand: its load
        elif MOVES.match(mnem) and mnem.startswith(("v", "k")):
            if mem:
                # AT&T: the destination is last; a store when it is the memory operand
                total["stores" if ops.rstrip().endswith(")") else "loads"] += n
            else:
                total["moves"] += n
        elif mnem.startswith("v"):
            total["other vector"] += n * width_slots(ops)
            total["pipe slots"] += n * width_slots(ops)
        else:
            total["scalar/integer/branch"] += n
    e = args.elements
    print(f"object: {obj}")
    print(f"elements: {e:.0f}; executed instructions not found in the disassembly: {unknown}")
    print(f"{'per element':<24}{'count':>10}")
    for key in ["instructions", "pipe slots"] + CLASSES + ["other vector", "loads", "stores",
                                                          "moves", "scalar/integer/branch"]:
        if total[key] or key in ("instructions", "pipe slots"):
            print(f"  {key:<22}{total[key] / e:>10.3f}")
    bound = max(total["pipe slots"] / 4, total["fma/mul"] / 2)
    print(f"  {'cycle bound (FP unit)':<22}{bound / e:>10.3f}")
    print("instructions per element, by function:")
    for func, n in per_func.most_common(args.functions):
        print(f"  {n / e:>9.3f}  {func}")


if __name__ == "__main__":
    main()
