#!/usr/bin/env python3
"""Compares the public struct layouts and enumerator values of two abidw descriptions
(the ABI baseline and the library just built), by dafl's own rule, independently of
libabigail's suppression engine (tests/packaging/check_abi.sh runs it beside abidiff).

- Every member of a baseline struct is still there, at the same offset, with the same
  type (types compared by name: pointers, qualifiers, typedefs and arrays spelled out).
- A struct whose first member is struct_size (the dafl_*_params structs and
  dafl_keypoint, read by the size the caller gives) may grow by members appended after
  its old end (its old tail padding included: an older binary's struct_size covers it);
  only a member named reserved*, which the library never reads, may fill that padding.
  Any other struct keeps its size and members exactly.
- Every baseline enumerator keeps its value; enumerators may be added.
- A struct or enum of the baseline is still described.

usage: abi_layouts.py BASELINE.abi CURRENT.abi
       abi_layouts.py --self-test BASELINE.abi
         (checks that a member moved, a member retyped, a member appended inside the old
         tail padding and an enumerator renumbered in a copy of the baseline are each
         reported: the comparison does compare layouts)
Exits 0 when compatible, 1 with one line per incompatibility otherwise.
"""

import copy
import sys
import xml.etree.ElementTree as ET


def load(path):
    return ET.parse(path).getroot()


def type_names(root):
    """type id -> a readable name that is equal for equal types across builds."""
    nodes = {}
    for el in root.iter():
        if el.get("id") is not None and el.tag != "elf-symbol":
            nodes[el.get("id")] = el
    names = {}

    def name(tid, depth=0):
        if tid in names:
            return names[tid]
        el = nodes.get(tid)
        if el is None or depth > 50:
            return f"<{tid}>"
        tag = el.tag
        if tag in ("type-decl", "typedef-decl", "class-decl", "union-decl", "enum-decl"):
            n = el.get("name", "") or f"<anonymous {tag}>"
        elif tag == "pointer-type-def":
            n = name(el.get("type-id"), depth + 1) + " *"
        elif tag == "qualified-type-def":
            quals = [q for q in ("const", "volatile", "restrict") if el.get(q) == "yes"]
            n = " ".join(quals + [name(el.get("type-id"), depth + 1)])
        elif tag == "array-type-def":
            n = f"{name(el.get('type-id'), depth + 1)}[{el.get('size-in-bits', '?')} bits]"
        else:
            n = f"<{tag}>"
        names[tid] = n
        return n

    return name


def structs(root):
    name_of = type_names(root)
    out = {}
    for el in root.iter("class-decl"):
        if el.get("is-declaration-only") == "yes" or not el.get("name"):
            continue
        members = []
        for dm in el.findall("data-member"):
            var = dm.find("var-decl")
            members.append((var.get("name"), int(dm.get("layout-offset-in-bits", "0")),
                            name_of(var.get("type-id"))))
        out[el.get("name")] = (int(el.get("size-in-bits", "0")), members)
    return out


def enums(root):
    out = {}
    for el in root.iter("enum-decl"):
        name = el.get("name")
        if name:
            out[name] = {e.get("name"): int(e.get("value")) for e in el.findall("enumerator")}
    return out


def compare(base, cur):
    problems = []
    bs, cs = structs(base), structs(cur)
    for name, (size, members) in sorted(bs.items()):
        if name not in cs:
            problems.append(f"struct {name}: no longer described")
            continue
        csize, cmembers = cs[name]
        extensible = bool(members) and members[0][0] == "struct_size"
        for i, m in enumerate(members):
            if i >= len(cmembers) or cmembers[i] != m:
                got = (f"{cmembers[i][0]} (offset {cmembers[i][1]} bits, {cmembers[i][2]})"
                       if i < len(cmembers) else "gone")
                problems.append(f"struct {name}: member {m[0]} (offset {m[1]} bits, {m[2]}) "
                                f"is now {got}")
        added = cmembers[len(members):]
        if extensible:
            if csize < size:
                problems.append(f"struct {name}: size shrank from {size} to {csize} bits")
            # A member appended inside the old size would be covered by the struct_size
            # an older binary passes (its sizeof, tail padding included), and read from
            # that caller's uninitialized padding.  Only a member named reserved* (the
            # library never reads one) may fill that padding.
            for m in added:
                if m[1] < size and not m[0].startswith("reserved"):
                    problems.append(f"struct {name}: member {m[0]} added at offset {m[1]} "
                                    f"bits, inside the old size {size}")
        else:
            if csize != size:
                problems.append(f"struct {name}: size changed from {size} to {csize} bits")
            for m in added:
                problems.append(f"struct {name}: member {m[0]} added (the struct has no "
                                f"struct_size to grow by)")
    be, ce = enums(base), enums(cur)
    for name, values in sorted(be.items()):
        if name not in ce:
            problems.append(f"enum {name}: no longer described")
            continue
        for enumerator, value in values.items():
            if ce[name].get(enumerator) != value:
                problems.append(f"enum {name}: {enumerator} was {value}, is now "
                                f"{ce[name].get(enumerator, 'gone')}")
    return problems


def self_test(path):
    base = load(path)
    ok = True

    def expect(what, mutate):
        nonlocal ok
        cur = copy.deepcopy(base)
        if not mutate(cur):
            print(f"self-test: nothing to mutate for '{what}'")
            ok = False
            return
        found = compare(base, cur)
        print(f"self-test: {what}: " + ("reported: " + found[0] if found else "NOT REPORTED"))
        ok = ok and bool(found)

    def move_member(root):  # a member of the first extensible struct moved by 32 bits
        for el in root.iter("class-decl"):
            dms = el.findall("data-member")
            if len(dms) > 1 and dms[0].find("var-decl").get("name") == "struct_size":
                dms[1].set("layout-offset-in-bits",
                           str(int(dms[1].get("layout-offset-in-bits")) + 32))
                return True
        return False

    def retype_member(root):  # the last member of dafl_keypoint takes another type
        for el in root.iter("class-decl"):
            if el.get("name") == "dafl_keypoint":
                dms = el.findall("data-member")
                first = dms[0].find("var-decl").get("type-id")
                dms[-1].find("var-decl").set("type-id", first)
                return True
        return False

    def append_into_padding(root):  # a member appended 32 bits before the old end
        for el in root.iter("class-decl"):
            dms = el.findall("data-member")
            if len(dms) > 1 and dms[0].find("var-decl").get("name") == "struct_size":
                added = copy.deepcopy(dms[-1])
                added.find("var-decl").set("name", "appended")
                added.set("layout-offset-in-bits", str(int(el.get("size-in-bits")) - 32))
                el.append(added)
                return True
        return False

    def renumber(root):
        for el in root.iter("enumerator"):
            el.set("value", str(int(el.get("value")) + 1))
            return True
        return False

    expect("a struct member moved", move_member)
    expect("dafl_keypoint's last member retyped", retype_member)
    expect("a member appended inside the old size", append_into_padding)
    expect("an enumerator renumbered", renumber)
    found = compare(base, copy.deepcopy(base))
    print("self-test: the baseline against itself: " + ("REPORTED" if found else "compatible"))
    return 0 if ok and not found else 1


def main(argv):
    if len(argv) == 3 and argv[1] == "--self-test":
        return self_test(argv[2])
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    problems = compare(load(argv[1]), load(argv[2]))
    for p in problems:
        print("LAYOUT: " + p)
    if not problems:
        n = len(structs(load(argv[1])))
        print(f"layouts: the {n} public structs and every enumerator as in the baseline "
              "(or grown by struct_size's rule)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
