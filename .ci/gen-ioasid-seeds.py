#!/usr/bin/env python3
"""Writes the seed corpus corpus/ioasid/ for the `ioasid` fuzz target (deterministic; rerun
after the op language in fuzz/harness/src/ioasid/input.rs changes).

Bytes as `IoasidInput::arbitrary_take_rest` decodes them: three little-endian u16 allocator
scripts (ops ids 1, 2, 3), then ops one after another: a selector byte (% 32, the weights of
`SELECTOR`) and the variant's fields, one byte each (bool = byte & 1).

    python3 .ci/gen-ioasid-seeds.py [OUT_DIR]      # default: corpus/ioasid next to .ci/
"""

import os
import struct
import sys

# (weight, variant) in the order of SELECTOR in input.rs.
SELECTOR = [(7, "Alloc"), (4, "Free"), (3, "Find"), (1, "SetData"), (3, "Register"),
            (3, "Unregister"), (3, "Bind"), (2, "Unbind"), (3, "Translate"), (2, "Map"),
            (1, "Unmap")]
BEHAVIOURS = ["fresh", "dup", "oor", "invalid", "fail"]


def sel(name):
    base = 0
    for w, n in SELECTOR:
        if n == name:
            return bytes([base])
        base += w
    raise KeyError(name)


def script(*names):
    """Packed: len + 5 * (base-5 digits, first behaviour lowest)."""
    assert len(names) <= 4
    v = 0
    for n in reversed(names):
        v = v * 5 + BEHAVIOURS.index(n)
    return struct.pack("<H", len(names) + 5 * v)


def b(*xs):
    return bytes(x & 0xFF for x in xs)


def small_range(lo, width):
    """[lo, lo + width - 1], lo 0..=5, width 1..=4 (resolve.rs `range`, kinds 0..=3)."""
    k = lo + 6 * (width - 1)
    return 8 * k


FULL = 4          # [0, 0xfffff]
BAD = 5           # min > max
TOP = 6           # just below INVALID_IOASID
INVALID_MAX = 7   # max = INVALID_IOASID


def live(n=0):   # the n-th outstanding ID
    return n


def bound(n=0):  # the n-th bound ID
    return 160 + n


def small_id(i):  # ID i (0..=11)
    return 208 + (i - 208 % 12) % 12


def edge(i):     # INVALID_IOASID, -1, -2, 0xfffff, 0x100000
    return 240 + (i - 240 % 5) % 5


def alloc(rng, data=0x10, set_=0):
    return sel("Alloc") + b(set_, rng, data)


def free(idp):
    return sel("Free") + b(idp)


def find(idp, set_=0, getter=False):
    return sel("Find") + b(idp, set_, int(getter))


def set_data(idp, data):
    return sel("SetData") + b(idp, data)


def register(ops, private=0):
    """ops 0..=2 is ops id 1..=3; private 0..=2 is 0, 0x10, 0x20."""
    return sel("Register") + b(ops, private)


def unregister(pick=0):
    return sel("Unregister") + b(pick)


def bind(idp, dom):
    return sel("Bind") + b(idp, dom)


def unbind(idp):
    return sel("Unbind") + b(idp)


def translate(idp, page):
    return sel("Translate") + b(idp, page)


def map_(dom, page, count=1):
    return sel("Map") + b(dom, page, count - 1)


def unmap(dom, page, count=1):
    return sel("Unmap") + b(dom, page, count - 1)


NO_SCRIPTS = script() * 3

SEEDS = {
    # Rules 1, 2, 3, 5 with the default and one custom allocator.
    "rules": NO_SCRIPTS + b"".join([
        alloc(small_range(2, 2)), alloc(small_range(2, 2)), alloc(small_range(2, 2)),
        register(0), free(live(0)), free(live(0)), register(0),
        alloc(small_range(0, 4), 7), unregister(0), find(live(0)), free(live(0)),
        unregister(0), alloc(FULL),
    ]),
    # An untrusted allocator through every behaviour; a second group queued behind it.
    "untrusted": script("fresh", "dup", "oor", "invalid") + script("fail") + script() + b"".join([
        register(0, 1), register(1, 2), register(0, 2),
        alloc(small_range(1, 2)), alloc(small_range(1, 2)), alloc(small_range(1, 2)),
        alloc(small_range(1, 2)), alloc(small_range(1, 2)), alloc(TOP),
        unregister(0), unregister(0), free(live(0)), free(live(0)), unregister(0),
        alloc(small_range(0, 1)),
    ]),
    # Bind, translate through the tables, free while bound, rebind, unbind.
    "bind": NO_SCRIPTS + b"".join([
        map_(0, 0x11, 2), map_(1, 0x21, 1), alloc(FULL, 5), bind(live(0), 0),
        translate(bound(0), 0x21), free(live(0)), bind(live(0), 0), bind(live(0), 1),
        translate(bound(0), 0x31), unmap(1, 1), translate(bound(0), 0x31),
        unbind(live(0)), unbind(live(0)), free(live(0)), translate(small_id(0), 1),
    ]),
    # Bound IDs hold a custom group in place; rule 3 with a binding.
    "bind-custom": script("fresh") + script() + script() + b"".join([
        register(0), alloc(small_range(3, 3)), alloc(small_range(3, 3)), bind(live(1), 1),
        free(live(0)), unregister(0), free(live(0)), unregister(0), unbind(bound(0)),
        free(live(0)), unregister(0), alloc(small_range(3, 3)),
    ]),
    # Sets, getters and data; argument errors and edge IDs.
    "lookups": NO_SCRIPTS + b"".join([
        alloc(small_range(0, 2), 4, 0), alloc(small_range(0, 2), 5, 1),
        find(live(0), 200), find(live(1), 150), find(live(1), 0, True), set_data(live(1), 6),
        find(live(1), 0, True), alloc(BAD), alloc(INVALID_MAX), find(edge(0)), free(edge(1)),
        set_data(small_id(9), 1),
    ]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "ioasid")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert 0 < len(data) < 1024, name
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
