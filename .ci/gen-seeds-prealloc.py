#!/usr/bin/env python3
"""Writes the seed corpus corpus/prealloc/ for the `prealloc` target (deterministic; rerun
after its op language changes). Encoding as in gen-seeds.py; keep POP in the order of
fuzz/harness/src/input/prealloc.rs.

    python3 .ci/gen-seeds-prealloc.py [OUT_DIR]      # default: corpus/prealloc next to .ci/
"""

import importlib.util
import os
import struct
import sys

_spec = importlib.util.spec_from_file_location(
    "gen_seeds", os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-seeds.py"))
g = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(g)

POP = ["Prepare", "Run", "Cleanup", "Reserve", "Unreserve", "Map", "Unmap", "Lookup", "Grace",
       "FailNth", "MapReserved", "UnmapReserved"]


def op(name):
    return g.variant(name, POP)


def spot(base, pages=0):
    return g.u8(base) + struct.pack("<h", pages)


def boolean(b):
    return g.u8(int(b))


def prepare(job, at, pages):
    return op("Prepare") + g.u8(job) + at + g.u16(pages - 1)


def run(job, offset, pages, big=False, outside=False):
    return op("Run") + g.u8(job) + g.u16(offset) + g.u16(pages) + boolean(big) + boolean(outside)


def cleanup(job):
    return op("Cleanup") + g.u8(job)


def reserve(at, pages):
    return op("Reserve") + at + g.u16(pages - 1)


def unreserve(n, bogus=False):
    return op("Unreserve") + g.u8(n) + boolean(bogus)


def map_(at, pages, big=False):
    return op("Map") + at + g.u8(pages - 1) + boolean(big)


def unmap(at, pages, big=False):
    return op("Unmap") + at + g.u8(pages - 1) + boolean(big)


SEEDS = {
    # Several jobs pending at once, run in another order, one abandoned.
    "jobs-out-of-order": g.config() + b"".join([
        prepare(1, spot(3), 16), prepare(2, spot(6, -1), 600), prepare(3, spot(9), 1),
        run(1, 0, 16), map_(spot(6), 4), run(0, 0, 600), cleanup(0), cleanup(0), cleanup(0),
    ]),
    # A run past its range: budget.
    "job-runs-dry": g.config() + b"".join([
        prepare(1, spot(4), 1), run(0, 0, 600, outside=True), cleanup(0),
        unmap(spot(4), 8),
    ]),
    # Nested reservations, bind/unbind inside, larger leaf refused, unreserve.
    "reserve-nested": g.config() + b"".join([
        reserve(spot(6), 1100), reserve(spot(6, 5), 3), op("MapReserved") + g.u8(0),
        map_(spot(6), 1, big=True), op("UnmapReserved") + g.u8(0),
        unreserve(0), unreserve(0), unreserve(0, bogus=True),
    ]),
    # Jobs inside a reservation take nothing from their pools.
    "jobs-in-reservation": g.config("arm64-s2", "16k", ias=40, oas=40) + b"".join([
        reserve(spot(5), 64), prepare(4, spot(5), 32), run(0, 0, 32), cleanup(0),
        unmap(spot(5), 32), unreserve(0), op("Grace"),
    ]),
    # 64K granule and a failing batch.
    "s1-64k-fail": g.config("arm64-s1", "64k", ias=42, oas=44) + b"".join([
        op("FailNth") + g.u8(1), prepare(1, spot(2), 8), reserve(spot(2), 8),
        prepare(1, spot(2), 8), run(0, 1, 4, big=True), cleanup(0), unreserve(0),
    ]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "prealloc")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
