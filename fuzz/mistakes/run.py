#!/usr/bin/env python3
"""Deliberate mistakes: each is planted in a scratch copy of the repository (never in this
tree), the cargo-fuzz target that should catch it (`pagetable` unless named: `ioasid` for
the `ioasid-*` mistakes, `prealloc` for issue 5's, `qemu_diff` for the QEMU one) is built
from that copy and run on one core until
the first crash or the time limit. Prints, per mistake, the seconds to the first crash and
the failure line. Issues 3-6 ask that each mistake be caught within 5 minutes.

    python3 fuzz/mistakes/run.py [--seconds 300] [--sanitizer address|none] [--no-seeds]
                                 [--no-trace-compares] [--sancov-all] [NAME...]
"""
import argparse, os, re, shutil, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# name: (file, exact text, replacement, what it breaks[, cargo-fuzz target; default pagetable])
MISTAKES = {
    "concat-root-index": (
        "engine/src/geometry.rs",
        "masks[lv as usize] = (1u64 << l.table_bits[lv as usize]) - 1;",
        "masks[lv as usize] = (1u64 << l.table_bits[lv as usize].min(l.table_bits[last as usize])) - 1;",
        "wrong index shift at the start level of a concatenated stage-2 root",
    ),
    "v7s-supersection-one-entry": (
        "engine/src/domain.rs",
        "            for i in 0..n {\n                self.wr(self.entry_pa(first, i), leaf);\n            }",
        "            self.wr(first, leaf);",
        "an armv7s supersection (or large page) written as one entry instead of sixteen",
    ),
    "s2-start-deepest": (
        "engine/src/format/lpae/layout.rs",
        "Concat::Required => [va_start, va_start + 1],",
        "Concat::Required => [va_start + 1, va_start],",
        "stage-2 default start level one deeper than Linux's where both are legal (no 1G/512M leaf)",
    ),
    "no-walk-flush": (
        "engine/src/domain.rs",
        "self.flush.flush_walk(va, span, self.geo.granule.size());",
        "let _ = (va, span);",
        "missing flush-walk when a table is unlinked",
    ),
    "no-table-sync": (
        "engine/src/domain.rs",
        "self.wr(slot, self.fmt.table(next));",
        "self.mem.write(slot, self.fmt.table(next));",
        "missing device-view sync after installing a table",
    ),
    "free-while-linked": (
        "engine/src/domain.rs",
        "        self.wr(slot, self.empty);\n        self.tables.add_live(parent, -1);\n        self.forget_paths();",
        "        self.free_subtree(child, child_level);\n        self.wr(slot, self.empty);\n        self.tables.add_live(parent, -1);\n        self.forget_paths();",
        "a table freed while still linked (before its parent entry is cleared)",
    ),
    "ias-off-by-one": (
        "engine/src/domain.rs",
        "a.checked_add(size).is_some_and(|e| e <= 1 << limit_bits)",
        "a.checked_add(size).is_some_and(|e| e < 1 << limit_bits)",
        "off-by-one at the last page below IAS",
    ),
    "no-unmap-tlbi": (
        "engine/src/domain.rs",
        "        self.flush.sync(&walk.gather);\n        Ok(bytes)",
        "        let _ = &walk.gather;\n        Ok(bytes)",
        "missing TLB invalidation of the leaves an unmap removed (QEMU oracle)",
        "qemu_diff",
    ),
    # Issue 16: sub-page tables (`hostpage=`).
    "subpage-overlap-sibling": (
        "engine/src/alloc.rs",
        "        let k = m.free_mask.trailing_zeros();\n        m.free_mask &= !(1u64 << k);",
        "        let k = m.free_mask.trailing_zeros().saturating_sub(1);\n        m.free_mask &= !(1u64 << k);",
        "a table placed over a live sibling in the same host page (the slot before the free one)",
    ),
    "v7s-packed-overlap-sibling": (
        "engine/src/alloc.rs",
        "        let k = m.free_mask.trailing_zeros();\n        m.free_mask &= !(1u64 << k);",
        "        let k = m.free_mask.trailing_zeros();\n"
        "        let k = if class == 10 { k.saturating_sub(1) } else { k };\n"
        "        m.free_mask &= !(1u64 << k);",
        "a 1 KiB armv7s level-2 table placed over a live sibling in the same host page (the "
        "slot before the free one; LPAE tables are never 1 KiB, so only packing shows it)",
    ),
    "subpage-page-freed-while-deferred": (
        "engine/src/alloc.rs",
        "        self.counters.live -= 1;\n        self.counters.deferred += 1;\n        self.record(|seq| AllocEvent::Defer { seq, pa });",
        "        self.counters.live -= 1;\n        self.counters.deferred += 1;\n"
        "        let p = f as u32 / self.upp();\n"
        "        let pm = self.pages[p as usize];\n"
        "        if pm.used == 1 && self.slots(pm.class as u32) > 1 {\n"
        "            if pm.free_mask != 0 {\n"
        "                self.partial_remove(p, pm.class as u32);\n"
        "            }\n"
        "            self.push_free_page(p);\n"
        "        }\n"
        "        self.record(|seq| AllocEvent::Defer { seq, pa });",
        "a host page given back when its last table is unlinked, while that table still waits "
        "for its grace period",
    ),
    # The TLB oracle on armv7s: only its check of repeated-leaf invalidations sees this.
    "v7s-large-page-partial-tlbi": (
        "engine/src/domain.rs",
        "self.flush.add_page(&mut walk.gather, page, pgsize);",
        "self.flush.add_page(&mut walk.gather, page, span);",
        "an armv7s 64K or 16M unmap page (a large page or supersection, or the small pages or "
        "sections in its 16 slots) invalidated over its first slot's span only (4K or 1M)",
    ),
    # The armv7s leaf-attribute check (walker::short): no other oracle decodes attributes.
    "v7s-section-xn-as-pxn": (
        "engine/src/format/v7s.rs",
        "pte |= 1 << 4;",
        "pte |= 1;",
        "an armv7s section or supersection without `x` written with PXN (bit 0, a small page's "
        "XN position) instead of XN (bit 4)",
    ),
    "v7s-large-page-tex-unmoved": (
        "engine/src/format/v7s.rs",
        "pte = (pte & !tex) | (tex << 6) | TYPE_TABLE_OR_LARGE;",
        "pte = pte | TYPE_TABLE_OR_LARGE;",
        "an armv7s 64K large page written with TEX where a small page has it ([8:6], SBZ in a "
        "large page) instead of [14:12]",
    ),
    # The armv7s structure walk: per-table live counts.
    "v7s-repeated-leaf-live-one": (
        "engine/src/domain.rs",
        "            self.tables.add_live(table, n as i32);",
        "            self.tables.add_live(table, 1);",
        "an armv7s large page or supersection counted as one live entry of its table instead of "
        "sixteen",
    ),
    # Issue 6 (target `ioasid`).
    "ioasid-custom-out-of-range": (
        "engine/src/ioasid/mod.rs",
        "if id < min || id > max {",
        "if id < min && id > max {",
        "an ID from a custom allocator accepted outside [min, max]",
    ),
    "ioasid-unregister-busy-group": (
        "engine/src/ioasid/mod.rs",
        "        if !g.space.is_empty() {\n            return Err(Reason::GroupBusy.into());",
        "        if false {\n            return Err(Reason::GroupBusy.into());",
        "unregistering the last allocator of a group with IDs outstanding",
    ),
    "ioasid-free-keeps-id": (
        "engine/src/ioasid/mod.rs",
        "        self.active_space_mut().remove(&id);\n        Ok(())",
        "        Ok(())",
        "a free that leaves the ID findable",
    ),
    "ioasid-switch-to-default-busy": (
        "engine/src/ioasid/mod.rs",
        "        if !g.space.is_empty() {\n            return Err(Reason::GroupBusy.into());",
        "        if !g.space.is_empty() && self.groups.len() > 1 {\n            return Err(Reason::GroupBusy.into());",
        "switching to the default allocator with IDs outstanding (refused only when another "
        "custom group would take over)",
    ),
    "ioasid-register-over-default-ids": (
        "engine/src/ioasid/mod.rs",
        "if self.groups.is_empty() && !self.default.space.is_empty() {",
        "if self.groups.is_empty() && self.default.space.is_empty() && false {",
        "switching from the default allocator to a custom one with IDs outstanding",
    ),
    "ioasid-free-while-bound": (
        "engine/src/ioasid/mod.rs",
        "if self.bindings.contains_key(&id) {",
        "if false && self.bindings.contains_key(&id) {",
        "a bound PASID freed (its binding left behind)",
    ),
    "ioasid-rebind-keeps-old": (
        "engine/src/ioasid/bind.rs",
        "Ok(self.bindings.insert(id, dom))",
        "Ok(Some(*self.bindings.entry(id).or_insert(dom)))",
        "a rebind that keeps translating through the old domain",
    ),
    # Issue 5: preallocation and reservation (fuzzed with the `prealloc` target).
    "count-forgets-top": (
        "engine/src/prealloc/count.rs",
        "(geo.start_level..geo.last_level)",
        "(geo.start_level + 1..geo.last_level)",
        "a worst-case count that forgets the top-level table",
    ),
    "job-global-page": (
        "engine/src/alloc.rs",
        "        if let Some(pool) = self.source {\n            return self.alloc_from_pool(mem, pool, level, bytes);\n        }",
        "        if let Some(pool) = self.source.filter(|p| level < 3 || *p == PoolId::Reserve) {\n            return self.alloc_from_pool(mem, pool, level, bytes);\n        }",
        "a job that takes a (last-level) table page from the global allocator",
    ),
    "jobs-share-pool": (
        "engine/src/prealloc/jobs.rs",
        "self.tables.set_source(Some(PoolId::Job(job)));",
        "let first = *self.jobs.keys().next().expect(\"pending\");\n        self.tables.set_source(Some(PoolId::Job(first)));",
        "two jobs sharing a pool (every run draws from the lowest pending job's pool)",
    ),
    "cleanup-forgets-leftovers": (
        "engine/src/prealloc/jobs.rs",
        ".return_pool(&mut self.mem, PoolId::Job(job))\n            .unwrap_or(0))",
        ".return_pool(&mut self.mem, PoolId::Job(job))\n            .map(|_| 0)\n            .unwrap_or(0))",
        "a cleanup that forgets the leftover pages",
    ),
    "unmap-frees-reserved": (
        "engine/src/domain.rs",
        "let goes = covered && !walk.stopped && self.tables.pins(child) == 0;",
        "let goes = covered && !walk.stopped;",
        "an unmap inside a reserved range that frees a (pinned) table",
    ),
    # Issue 13: frames that vanish from the allocator, and walk caches that outlive an
    # unlinked table's span. (A job's cleanup frees no table: it only returns its pool's
    # leftover frames, so it has no walk invalidation to get wrong.)
    "grace-loses-frame": (
        "engine/src/alloc.rs",
        "        for q in p..p + n {\n            self.push_free_page(q);\n        }",
        "        for q in p..p + n {\n            if notify {\n                self.pages[q as usize].state = PageState::Free;\n            } else {\n                self.push_free_page(q);\n            }\n        }",
        "a host page released after the grace period that never reaches the free list",
    ),
    "free-list-skips-node": (
        "engine/src/alloc.rs",
        "        m.next = self.free_head;\n        self.free_head = p;\n        self.free_len += 1;",
        "        m.next = self.free_head;\n        self.free_head = p;\n        self.free_len += 1;\n"
        "        if self.free_len % 3 == 0 {\n            let second = self.pages[p as usize].next;\n"
        "            self.pages[p as usize].next = self.pages[second as usize].next;\n        }",
        "a free list whose push drops the next node every third page (the count stays right)",
    ),
    "unreserve-partial-walk": (
        "engine/src/reserve.rs",
        "self.unlink_table(parent, slot, child, level, va, span);",
        "let (lo, hi) = (va.max(iova), (va + span).min(end));\n"
        "                            self.unlink_table(parent, slot, child, level, lo, hi - lo);",
        "an unreserve whose walk invalidation covers only the requested range of a table it frees",
    ),
    "vec-in-map": (
        "engine/src/domain.rs",
        "        let mut done = 0u64;\n        while done < count {",
        "        let trail = std::hint::black_box(vec![iova]);\n        drop(trail);\n        let mut done = 0u64;\n        while done < count {",
        "a Vec growing inside the map path",
    ),
}

# The fuzz target that must catch each mistake (default: pagetable).
TARGET = {name: "ioasid" for name in MISTAKES if name.startswith("ioasid-")}
TARGET.update({n: "prealloc" for n in ["count-forgets-top", "job-global-page", "jobs-share-pool",
                                        "cleanup-forgets-leftovers", "unmap-frees-reserved", "vec-in-map",
                                        "unreserve-partial-walk"]})


def target_of(name):
    m = MISTAKES[name]
    return m[4] if len(m) > 4 else TARGET.get(name, "pagetable")


def scratch_copy(name, suffix=""):
    dst = f"/tmp/ptfuzz-mistake-{name}{suffix}"
    shutil.rmtree(dst, ignore_errors=True)
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for f in files:
        src = os.path.join(ROOT, f)
        if os.path.isfile(src):
            os.makedirs(os.path.dirname(os.path.join(dst, f)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, f))
    # The private QEMU prefix (qemu-images/install-qemu.sh) is not tracked: share it.
    prefix = os.path.join(ROOT, "qemu-images", "root")
    if os.path.isdir(prefix):
        os.symlink(prefix, os.path.join(dst, "qemu-images", "root"))
    return dst


def edited(root, name):
    """The mistake's file with its edit applied (one (old, new) pair, or a list of pairs when
    new is None), or an error naming the text that is not in the file exactly once."""
    path, old, new = MISTAKES[name][:3]
    edits = old if new is None else [(old, new)]
    text = open(os.path.join(root, path)).read()
    for o, n in edits:
        if text.count(o) != 1:
            return None, f"{name}: the text to change is not in {path} exactly once; update run.py"
        text = text.replace(o, n)
    return text, None


def plant(dst, name):
    text, err = edited(dst, name)
    if err:
        sys.exit(err)
    open(os.path.join(dst, MISTAKES[name][0]), "w").write(text)


def check(names):
    """Every mistake still applies to this tree (the engine moves on; a stale mistake would
    only fail when someone next runs it). Returns the exit status."""
    bad = [err for err in (edited(ROOT, n)[1] for n in names) if err]
    for err in bad:
        print(err, file=sys.stderr)
    print(f"{len(names) - len(bad)} of {len(names)} planted mistakes apply")
    return 1 if bad else 0


def fuzz(dst, name, seconds, sanitizer, core, seeds, trace_compares=True, scoped=True):
    target = target_of(name)
    # One target dir per fuzz target (per mistake for pagetable): dependencies build once.
    tdir = name if target == "pagetable" else target
    flavour = sanitizer + ("" if trace_compares else "-ntc") + ("-scoped" if scoped else "")
    env = dict(os.environ, CARGO_TARGET_DIR=f"/tmp/ptfuzz-mistakes-target-{flavour}-{tdir}")
    # libFuzzer itself without ASan, as .ci/fuzz.sh builds it (it says why).
    env["CXXFLAGS"] = (os.environ.get("CXXFLAGS", "") + " -fno-sanitize=address").strip()
    if scoped:
        # Coverage for the engine and the executor only, as .ci/fuzz.sh builds.
        env["RUSTC_WRAPPER"] = os.path.join(dst, "fuzz", "libfuzzer", "sancov-scope.sh")
    toolchain = ["+nightly"] if sanitizer == "address" else []
    base = ["cargo", *toolchain, "fuzz"]
    common = ["--fuzz-dir", "fuzz/libfuzzer", "--sanitizer", sanitizer]
    if not trace_compares:
        common.append("--no-trace-compares")
    subprocess.run(base + ["build", *common, target], cwd=dst, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    corpus = os.path.join(dst, "target", "mistake-corpus")
    shutil.rmtree(corpus, ignore_errors=True)
    os.makedirs(corpus)
    if seeds:
        seeds_dir = os.path.join(dst, "corpus", target)
        if not os.path.isdir(seeds_dir):
            seeds_dir = os.path.join(dst, "corpus", "pagetable")
        shutil.copytree(seeds_dir, corpus, dirs_exist_ok=True)
    art = os.path.join(dst, "target", "mistake-artifacts") + "/"
    os.makedirs(art, exist_ok=True)
    cmd = ["taskset", "-c", str(core), *base, "run", *common, target, corpus, "--",
           f"-max_total_time={seconds}", "-seed=1", f"-artifact_prefix={art}", "-print_final_stats=1"]
    t0 = time.monotonic()
    out = subprocess.run(cmd, cwd=dst, env=env, capture_output=True, text=True)
    took = time.monotonic() - t0
    log = out.stdout + out.stderr
    found = out.returncode != 0 and any(f.startswith("crash-") for f in os.listdir(art))
    lines = log.splitlines()
    why = next((l.strip() for l in lines if "divergence at op" in l), "") or \
        next((l.strip() for l in lines if "[budget]" in l or "[alloc-guard]" in l), "") or \
        next((l.strip() for l in lines if "panicked" in l), "")
    execs = re.findall(r"stat::number_of_executed_units:\s*(\d+)", log)
    return found, took, why, execs[-1] if execs else "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=300)
    ap.add_argument("--sanitizer", default="address")
    ap.add_argument("--core", type=int, default=0)
    ap.add_argument("--no-seeds", action="store_true", help="start from an empty corpus")
    ap.add_argument("--no-trace-compares", action="store_true",
                    help="build without comparison tracing (as .ci/fuzz.sh does)")
    ap.add_argument("--sancov-all", action="store_true",
                    help="coverage feedback from every crate (cargo-fuzz's default) instead of "
                         "the engine and executor only (fuzz/libfuzzer/sancov-scope.sh, as CI)")
    ap.add_argument("--check", action="store_true",
                    help="only check that every mistake's edit applies to this tree (CI runs it)")
    ap.add_argument("names", nargs="*")
    a = ap.parse_args()
    if a.check:
        sys.exit(check(a.names or list(MISTAKES)))
    for name in a.names or MISTAKES:
        dst = scratch_copy(name, ("-ntc" if a.no_trace_compares else "") + ("-all" if a.sancov_all else ""))
        plant(dst, name)
        found, took, why, execs = fuzz(dst, name, a.seconds, a.sanitizer, a.core, not a.no_seeds,
                                       not a.no_trace_compares, not a.sancov_all)
        verdict = f"caught in {took:.1f} s" if found else f"NOT caught in {a.seconds} s"
        print(f"{name:20} {verdict:>22}  execs={execs}  [{target_of(name)}] ({MISTAKES[name][3]})\n    {why}", flush=True)


if __name__ == "__main__":
    main()
