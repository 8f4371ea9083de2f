#!/usr/bin/env python3
"""Writes the seed corpus corpus/pagetable/ (deterministic; rerun after the op language changes).

The bytes are what `ptfuzz_harness::input::Input::arbitrary_take_rest` decodes (arbitrary 1.5):
integers little-endian, bool = byte & 1, fields in declaration order, ops one after another
until the bytes run out (fuzz/harness/src/input/bytes.rs): the configuration as 0x80 and its six
bytes (a first byte below 0x80 would be the format byte alone); an op is one byte k (decoded as
byte % 7); an operand's first byte below 0x80 is the common variant with that value (Pool,
Legal, Small), 0x80 | six bits the second (Live + an i8 page offset, Pow2, Span + one more
byte of bits), 0xc0 the raw one + a u64; a map's permission byte is XORed with 0b11.
Keep the variant lists below in the order of fuzz/harness/src/input/mod.rs.

    python3 .ci/gen-seeds.py [OUT_DIR]      # default: corpus/pagetable next to .ci/
"""

import os
import struct
import sys

OP = ["Map", "Unmap", "Lookup", "Sync", "Grace", "FailNth", "Clear"]
FORMATS = ["arm64-s1", "arm64-s2", "arm32-lpae-s1", "arm32-lpae-s2", "armv7s"]
GRANULES = ["4k", "16k", "64k"]
R, W, X, C, M, P = 1, 2, 4, 8, 16, 32
PROT_ZERO = R | W  # a map's permission byte is XORed with it (bytes.rs)
IAS_POOL = [32, 36, 39, 40, 42, 44, 47, 48]


def variant(name, names):
    return bytes([names.index(name)])


def u8(x):
    return struct.pack("<B", x & 0xFF)


def i8(x):
    return struct.pack("<b", x)


def u16(x):
    return struct.pack("<H", x)


def u32(x):
    return struct.pack("<I", x)


def u64(x):
    return struct.pack("<Q", x & (2**64 - 1))


CONCAT_MAX_BIT = 0x40  # resolve_config: a stage-2 domain with `concat=max`


def config(fmt="arm64-s1", granule="4k", ias=None, oas=None, coherent=True, custom=False,
           concat_max=False, window=0):
    # ias/oas: a bit count from resolve_config's pool (a byte < 0x80 picks IAS_POOL[v % 8]),
    # then clamped to the format's range.
    def bits(b):
        return IAS_POOL.index(48 if b is None else b)

    # window (bits 1-3 of the coherent byte): 6 puts the tables in the last 16 frames below
    # 2^OAS, 7 in the last 32 (ConfigChoice::window), where frames run out and are reused.
    fmt_byte = FORMATS.index(fmt) | (CONCAT_MAX_BIT if concat_max else 0)
    # 0x80 in front: the full six-byte form (a first byte below 0x80 is the format alone).
    return (u8(0x80) + u8(fmt_byte) + u8(GRANULES.index(granule)) + u8(bits(ias)) + u8(bits(oas))
            + u8(int(coherent) | window << 1) + u8(int(custom)))


def pool(i):
    assert 0 <= i < 0x80
    return u8(i)


def live(n, pages=0):
    assert 0 <= n < 0x40
    return u8(0x80 | n) + i8(pages)


def raw(v):
    return u8(0xC0) + u64(v)


def legal(i):
    assert 0 <= i < 0x80
    return u8(i)


def pow2(b):
    assert 0 <= b < 0x40
    return u8(0x80 | b)


def rawsize(v):
    return u8(0xC0) + u64(v)


def small(n):
    """n pages, 1..=8"""
    return u8(n - 1)


def span(n):
    """n pages: 1..=64 as a Span; more as a Raw count (kept exact up to MAX_PAGES = 1024)"""
    if n <= 64:
        bits = ((n - 1) << 3) | 1
        return u8(0x80 | (bits & 0x3F)) + u8(bits >> 6)
    return rawcount(n)


def rawcount(v):
    return u8(0xC0) + u64(v)


def map_(iova, pa, size, count, prot=R | W):
    return variant("Map", OP) + iova + pa + size + count + u8(prot ^ PROT_ZERO)


def unmap(iova, size, count):
    return variant("Unmap", OP) + iova + size + count


def lookup(iova, offset=0x123):
    return variant("Lookup", OP) + iova + u32(offset)


def sync():
    return variant("Sync", OP)


def grace():
    return variant("Grace", OP)


def fail_nth(n):
    return variant("FailNth", OP) + u8(n)


def clear():
    return variant("Clear", OP)


# Page-size index 0 is the granule, 1 the next block size, 2 the largest (for 4K: 4k 2m 1g).
SEEDS = {
    # Map a block and pages, look them up, unmap too small / the right size.
    "block-and-pages": config() + b"".join([
        map_(pool(3), pool(1), legal(1), small(1)),
        map_(pool(5), pool(2), legal(0), small(8), R),
        lookup(live(0)), lookup(live(1, 1)),
        unmap(live(0), legal(0), small(1)),
        unmap(live(0), legal(1), small(1)),
        lookup(live(0)), unmap(live(0), legal(0), small(8)),
    ]),
    # A run of pages that crosses a table boundary, then partial and full unmaps.
    "span-across-tables": config() + b"".join([
        map_(pool(6), pool(1), legal(0), span(520)),
        unmap(live(3), legal(0), span(40)),
        lookup(live(7)), map_(live(3), live(2), legal(0), small(4)),
        unmap(live(0), legal(0), span(528)),
        grace(), lookup(pool(6)),
    ]),
    # Map over existing leaves and empty tables, and unmap holes.
    "exists-and-holes": config() + b"".join([
        map_(pool(4), pool(3), legal(0), small(2)),
        map_(live(0), pool(4), legal(0), small(1)),
        map_(live(0), pool(4), legal(1), small(1)),
        unmap(live(0), legal(0), small(2)),
        map_(pool(4), pool(3), legal(1), small(1), R | W | X),
        unmap(pool(9), legal(0), small(3)),
        unmap(live(0), legal(1), small(1)),
    ]),
    # Argument errors: zero counts, bad sizes, misalignment, past IAS and OAS, no permission.
    "arg-errors": config() + b"".join([
        map_(pool(2), pool(1), legal(0), rawcount(0)),
        map_(pool(2), pool(1), pow2(13), small(1)),
        map_(raw(0x1234), pool(1), legal(0), small(1)),
        map_(raw(1 << 48), pool(1), legal(0), small(1)),
        map_(pool(2), raw(2**64 - 4096), legal(0), small(2)),
        map_(pool(2), pool(1), legal(0), small(1), C),
        map_(pool(2), pool(1), rawsize(3 << 12), small(1)),
        unmap(pool(2), legal(0), rawcount(2**63)),
        unmap(raw(2**64 - 4096), legal(0), small(2)),
        lookup(raw(2**64 - 1)),
    ]),
    # The top of the input space and of the output space.
    "address-space-edges": config(ias=39, oas=40) + b"".join([
        map_(pool(127), pool(2), legal(0), small(1)),
        map_(pool(126), pool(0), legal(1), small(1)),
        map_(live(0, -1), live(0, -1), legal(0), small(2)),
        lookup(live(1)), unmap(pool(127), legal(0), small(1)),
        unmap(live(0), legal(0), span(512)),
    ]),
    # Stage 2, 16K granule: concatenated root tables.
    "s2-16k-concat": config("arm64-s2", "16k", ias=40, oas=40) + b"".join([
        map_(pool(7), pool(2), legal(1), small(2)),
        map_(pool(5), pool(3), legal(0), span(1024)),
        lookup(live(0)), lookup(live(5)),
        unmap(live(0), legal(0), span(1024)), unmap(live(0), legal(1), small(2)),
    ]),
    # 64K granule: 512M blocks and 64K pages.
    "s1-64k": config("arm64-s1", "64k", ias=42, oas=44) + b"".join([
        map_(pool(3), pool(3), legal(1), small(1), R | X | C),
        map_(pool(6), pool(5), legal(0), small(8), W | M),
        map_(live(0), pool(1), legal(0), small(1)),
        lookup(live(1)), unmap(live(1), legal(0), small(3)), clear(),
        lookup(pool(3)),
    ]),
    # Stage 2, 4K, IAS 32 as Linux starts it (L1, 4 entries): 1G blocks beside 2M and 4K.
    "s2-4k-ias32": config("arm64-s2", "4k", ias=32, oas=32) + b"".join([
        map_(pool(3), pool(3), legal(2), small(1)),
        map_(pool(10), pool(2), legal(1), small(2)),
        map_(pool(7), pool(1), legal(0), span(600)),
        lookup(live(0)), lookup(live(2)),
        unmap(live(0), legal(2), small(1)), unmap(live(1), legal(0), span(600)),
    ]),
    # Armv7 LPAE stage 1 (IAS 32) and stage 2 (IAS 40, concatenated root).
    "arm32-lpae-s1": config("arm32-lpae-s1", oas=40) + b"".join([
        map_(pool(2), pool(2), legal(1), small(3), R | P),
        map_(pool(7), pool(4), legal(0), span(513)),
        lookup(live(2)), unmap(live(0), legal(1), small(3)),
        unmap(live(0), legal(0), span(513)),
    ]),
    "arm32-lpae-s2": config("arm32-lpae-s2", ias=40, oas=40) + b"".join([
        map_(pool(9), pool(6), legal(2), small(1)),
        map_(pool(4), pool(1), legal(1), small(4)),
        lookup(live(1)), unmap(live(0), legal(1), small(1)), unmap(live(0), legal(2), small(1)),
    ]),
    # A non-coherent walker: writes reach the device only after sync.
    "noncoherent-sync": config(coherent=False) + b"".join([
        map_(pool(3), pool(2), legal(0), small(4)),
        sync(), lookup(live(1)),
        unmap(live(0), legal(0), small(2)), sync(), grace(),
        map_(pool(7), pool(3), legal(1), small(1)), sync(),
    ]),
    # Custom allocator hooks for a concatenated stage-2 root (concat=max: L1, 2 tables; by
    # default OAS 48 would allow L0), then a clear.
    "custom-alloc": config("arm64-s2", "4k", ias=40, oas=48, custom=True, concat_max=True)
    + b"".join([
        map_(pool(3), pool(2), legal(0), span(700)),
        map_(pool(9), pool(3), legal(1), small(2)),
        unmap(live(0), legal(0), span(100)), clear(), lookup(pool(3)),
    ]),
    # Allocation failure injection (fail the n-th table allocation) mid-map.
    "fail-nth": config() + b"".join([
        fail_nth(1), map_(pool(6), pool(1), legal(0), span(600)),
        lookup(live(0)), fail_nth(0), map_(pool(9), pool(2), legal(0), small(1)),
        unmap(live(0), legal(0), span(600)),
    ]),
    # Tables in the last 16 frames below 2^OAS: maps run out of frames (nomem), and frames
    # freed by unmap and the grace period must be reused, not carved anew.
    "tight-window": config(window=6) + b"".join([
        map_(pool(3), pool(1), legal(0), small(4)),
        map_(pool(6), pool(2), legal(0), small(4)),
        map_(pool(9), pool(3), legal(0), small(4)),
        map_(pool(12), pool(4), legal(0), small(4)),
        map_(pool(15), pool(5), legal(0), small(4)),
        map_(pool(18), pool(6), legal(0), small(4)),
        map_(raw(0x1000_0000_0000), pool(2), legal(0), small(4)),
        map_(raw(0x2000_0000_0000), pool(3), legal(0), small(4)),
        unmap(live(0), legal(0), small(4)), grace(),
        map_(pool(21), pool(7), legal(0), small(4)),
        unmap(live(0), legal(0), span(64)), unmap(live(0), legal(0), span(64)), grace(),
        map_(pool(24), pool(8), legal(0), small(8)),
        clear(), grace(), map_(pool(27), pool(2), legal(0), small(8)),
    ]),
    # Stage 2, 64K granule, in the last 32 frames: a concatenated root and a few tables.
    "tight-window-s2": config("arm64-s2", "64k", ias=44, oas=44, coherent=False, window=7) + b"".join([
        map_(pool(2), pool(1), legal(0), span(40)),
        map_(pool(8), pool(2), legal(0), small(8)),
        map_(pool(14), pool(3), legal(1), small(1)),
        unmap(live(0), legal(0), span(40)), grace(),
        map_(pool(20), pool(4), legal(0), small(8)), fail_nth(1),
        map_(pool(26), pool(5), legal(0), small(8)), unmap(live(1), legal(0), small(8)), grace(),
    ]),
    # Armv7 short descriptors: small and large pages, a section and a supersection (page
    # sizes 4K, 64K, 1M, 16M), a large page unmapped in part, a run of small pages across a
    # level-2 table, then a large page where small ones were.
    "armv7s-pages": config("armv7s", ias=32, oas=32) + b"".join([
        map_(pool(3), pool(1), legal(0), small(8)),
        map_(pool(5), pool(2), legal(1), small(2)),
        map_(pool(7), pool(3), legal(2), small(1)),
        map_(pool(6), pool(4), legal(3), small(1), R),
        lookup(pool(5)), lookup(pool(6)),
        unmap(pool(5), legal(0), small(1)),
        unmap(pool(3), legal(0), span(16)),
        unmap(pool(7), legal(2), small(1)), grace(),
        map_(pool(3), pool(5), legal(1), small(1)),
        clear(),
    ]),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "pagetable")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        assert 0 < len(data) < 4096, name
        with open(os.path.join(out, name + ".bin"), "wb") as f:
            f.write(data)
    print(f"wrote {len(SEEDS)} seeds to {os.path.normpath(out)}")


if __name__ == "__main__":
    main()
