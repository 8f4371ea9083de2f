//! The table allocator: exact counters, when tables are allocated and freed, deferred free
//! and the grace period (poisoning, reuse), allocation-failure injection, custom allocator
//! hooks, the 2^OAS placement limit, and the device view of non-coherent domains.

#[macro_use]
mod common;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use common::*;
use ptfuzz_engine::alloc::POISON;
use ptfuzz_engine::{
    CustomAllocator, Domain, ErrorKind, FlushEvent, FlushLog, FormatKind, FrameState, Granule,
    MapError, Owner, Prot,
};

use FormatKind::*;
use Granule::*;

fn counters_tuple(d: &Domain<FlushLog>) -> (u64, u64, u64, u64) {
    let c = d.counters();
    (c.allocated, c.live, c.deferred, c.freed)
}

/// Random map/unmap/grace/fail-nth sequences against the model: after every op the reachable
/// tables are exactly the model's, every live table is reachable, and the counters add up.
fn random_ops_keep_tables_and_counters_exact(f: FormatKind) {
    for e in drive_configs(f) {
        for seed in [1, 2] {
            drive(&e, true, seed, 70, |d, m, r| {
                let what = format!("{e:?} seed {seed} op {}: {:?}", r.index, r.op);
                check_against_model(d, m, &what);
                let c = r.after;
                assert_eq!(
                    c.allocated - r.before.allocated,
                    r.fx.allocated.len() as u64,
                    "{what}: allocations"
                );
                assert_eq!(
                    r.new_deferred.len(),
                    r.fx.freed.len(),
                    "{what}: tables freed"
                );
                if let Op::GracePeriod = r.op {
                    assert_eq!(c.deferred, 0, "{what}");
                    assert_eq!(c.freed, r.before.freed + r.before.deferred, "{what}");
                }
            });
        }
    }
}

/// Non-coherent domains: after every op the device view of every live table equals the CPU
/// view (the engine synced every write and every new table), and the device view alone
/// walks to the model's state.
fn non_coherent_device_view_is_synced_after_every_op(f: FormatKind) {
    for e in drive_configs(f) {
        for seed in [3, 4] {
            drive(&e, false, seed, 70, |d, m, r| {
                let what = format!("{e:?} non-coherent seed {seed} op {}: {:?}", r.index, r.op);
                assert!(!d.mem().is_coherent());
                check_device_synced(d, &what);
                check_against_model(d, m, &what);
            });
        }
    }
}

/// The same on a fixed sequence that reuses poisoned frames and replaces an empty table.
fn non_coherent_reuse_of_poisoned_frames(f: FormatKind) {
    for e in drive_configs(f) {
        let sizes = e.page_sizes();
        let small = sizes[0];
        let p = e.level_of(small);
        if p == e.start {
            continue;
        }
        let t = e.table_span(p);
        if 4 * t > e.ia_size() {
            continue;
        }
        let mut cfg = e.config();
        cfg.coherent = false;
        let mut d = domain(cfg);
        let n = 1u64 << e.s();
        let what = format!("{e:?} non-coherent");
        let step = |d: &mut Domain<FlushLog>, label: &str| {
            check_device_synced(d, &format!("{what}: {label}"));
            check_structure(d, &e);
        };
        assert_eq!(d.map(t, 0, small, n, Prot::RW), Ok(n * small));
        step(&mut d, "full table");
        assert_eq!(d.unmap(t, small, n), Ok(n * small));
        step(&mut d, "table freed");
        d.grace_period();
        step(&mut d, "grace period");
        assert_eq!(d.map(3 * t, small, small, 2, Prot::READ), Ok(2 * small));
        step(&mut d, "reused frame");
        assert_eq!(d.lookup(3 * t + small + 1), Some(2 * small + 1));
        if let Some(&big) = sizes.get(1) {
            // `big` is the span of the slot above the leaf table (`big == t`); the slot at
            // `t` is empty since its table was freed.
            assert_eq!(big, t);
            let x = t;
            assert_eq!(d.map(x, 0, small, 1, Prot::RW), Ok(small));
            assert_eq!(d.unmap(x, small, 1), Ok(small));
            step(&mut d, "empty table");
            assert_eq!(d.map(x, big, big, 1, Prot::RW), Ok(big));
            step(&mut d, "empty table replaced by a block");
            d.grace_period();
            assert_eq!(d.map(x + big, 0, small, 3, Prot::RW), Ok(3 * small));
            step(&mut d, "reuse after replacement");
        }
        d.fail_nth_alloc(Some(2));
        let far = e.ia_size() - small;
        let r = d.map(far, 0, small, 1, Prot::RW);
        step(&mut d, "after an injected failure");
        if e.start + 1 < p {
            assert_eq!(r, Err(MapError::new(ErrorKind::Nomem, 0)));
        }
    }
}

/// 4K, IAS 48, stage 1 (start L0): tables at L3, L2 and L1 are freed exactly when one unmap
/// covers their whole span, and empty tables are kept otherwise.
#[test]
fn tables_freed_exactly_when_their_whole_span_is_unmapped() {
    let e = expected(Arm64S1, G4K, 48, 48).unwrap();
    let mut d = domain_for(&e);
    assert_eq!(counters_tuple(&d), (1, 1, 0, 0));
    assert_eq!(d.map(0, 0, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(counters_tuple(&d), (4, 4, 0, 0), "root + L1 + L2 + L3");
    assert_eq!(d.unmap(0, K4, 1), Ok(K4));
    assert_eq!(
        counters_tuple(&d),
        (4, 4, 0, 0),
        "an emptied L3 table is kept"
    );
    assert_eq!(d.map(0, 0, K4, 512, Prot::RW), Ok(M2));
    assert_eq!(counters_tuple(&d), (4, 4, 0, 0), "no new table needed");
    // The whole span, but in two calls: neither call covers it, the table stays.
    assert_eq!(d.unmap(0, K4, 511), Ok(511 * K4));
    assert_eq!(d.unmap(511 * K4, K4, 1), Ok(K4));
    assert_eq!(
        counters_tuple(&d),
        (4, 4, 0, 0),
        "span unmapped piecewise: table kept"
    );
    check_structure(&d, &e);
    // In one call: freed.
    assert_eq!(d.map(0, 0, K4, 512, Prot::RW), Ok(M2));
    assert_eq!(d.unmap(0, K4, 512), Ok(M2));
    assert_eq!(counters_tuple(&d), (4, 3, 1, 0), "L3 freed");
    check_structure(&d, &e);
    // A run over one whole L3 table and two pages of the next: only the first is freed.
    assert_eq!(d.map(0, 0, K4, 514, Prot::RW), Ok(M2 + 2 * K4));
    assert_eq!(counters_tuple(&d), (6, 5, 1, 0));
    assert_eq!(d.unmap(0, K4, 1024), Ok(M2 + 2 * K4), "stops at the hole");
    assert_eq!(
        counters_tuple(&d),
        (6, 4, 2, 0),
        "first L3 freed, second kept"
    );
    check_structure(&d, &e);
    // 2M blocks over the L2 table's whole span: slot 1 holds the kept, empty L3 table,
    // which the block replaces (and frees).
    assert_eq!(d.map(0, 0, M2, 512, Prot::RW), Ok(G1));
    assert_eq!(
        counters_tuple(&d),
        (6, 3, 3, 0),
        "empty L3 replaced by a block"
    );
    assert_eq!(d.unmap(0, M2, 512), Ok(G1));
    assert_eq!(counters_tuple(&d), (6, 2, 4, 0), "L2 freed");
    assert_eq!(d.map(0, 0, G1, 512, Prot::RW), Ok(512 * G1));
    assert_eq!(d.unmap(0, G1, 512), Ok(512 * G1));
    assert_eq!(
        counters_tuple(&d),
        (6, 1, 5, 0),
        "L1 freed: only the root is left"
    );
    check_structure(&d, &e);
    d.grace_period();
    assert_eq!(counters_tuple(&d), (6, 1, 0, 5));
    // A table at the page level with leaves under it is removed whole by a larger unmap,
    // and the L2 above it goes too when the unmap covers its span.
    assert_eq!(d.map(0, 0, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(d.map(M2, M2, M2, 511, Prot::RW), Ok(511 * M2));
    assert_eq!(counters_tuple(&d), (9, 4, 0, 5));
    assert_eq!(d.unmap(0, M2, 512), Ok(G1));
    assert_eq!(
        counters_tuple(&d),
        (9, 2, 2, 5),
        "L2 and the L3 under it freed"
    );
    assert_eq!(d.lookup(0), None);
    check_structure(&d, &e);
}

/// SEMANTICS "map": a table at the slot with no valid leaf under it is replaced by the leaf;
/// the whole subtree is freed (deferred), after a walk flush over the slot's span.
#[test]
fn empty_table_replaced_by_a_block_is_freed_after_a_walk_flush() {
    for e in sample() {
        let sizes = e.page_sizes();
        for (i, &small) in sizes.iter().enumerate() {
            for &big in &sizes[i + 1..] {
                let what = format!("{e:?} small {small:#x} big {big:#x}");
                let mut d = domain_for(&e);
                let x = big; // big slot 1
                assert_eq!(d.map(x + big - small, 0, small, 1, Prot::RW), Ok(small));
                assert_eq!(d.unmap(x + big - small, small, 1), Ok(small));
                let (tables, _) = check_structure(&d, &e);
                let under: BTreeSet<u64> = tables
                    .iter()
                    .filter(|t| t.level > e.level_of(big) && t.base >= x && t.base < x + big)
                    .map(|t| t.pa)
                    .collect();
                assert_eq!(
                    under.len() as u32,
                    e.level_of(small) - e.level_of(big),
                    "{what}"
                );
                d.flush_ops_mut().events.clear();
                let before = d.counters();
                assert_eq!(d.map(x, 3 * big, big, 1, Prot::RW), Ok(big), "{what}");
                let c = d.counters();
                assert_eq!(
                    c.deferred,
                    before.deferred + under.len() as u64,
                    "{what}: subtree deferred"
                );
                assert_eq!(c.live, before.live - under.len() as u64, "{what}");
                assert_eq!(c.allocated, before.allocated, "{what}: nothing allocated");
                let deferred: BTreeSet<u64> = d.tables().deferred().collect();
                assert!(
                    under.is_subset(&deferred),
                    "{what}: the replaced tables are deferred"
                );
                for &pa in &under {
                    assert_eq!(d.tables().meta(pa).unwrap().state, FrameState::Deferred);
                }
                let ev = &d.flush_ops().events;
                assert!(
                    walk_flushed(ev, x, big),
                    "{what}: no walk flush over the slot: {ev:?}"
                );
                for event in ev {
                    if let FlushEvent::Walk { granule, .. } = event {
                        assert_eq!(*granule, e.granule_size(), "{what}");
                    }
                }
                assert_eq!(d.lookup(x + 5), Some(3 * big + 5));
                check_structure(&d, &e);
            }
        }
    }
}

/// The grace period poisons released tables (both views) and puts them on the free list;
/// nothing deferred is reused before it; a new table after it reuses a released frame,
/// zeroed.
fn grace_period_poisons_then_frames_are_reused_zeroed(f: FormatKind) {
    assert_eq!(POISON & 0b1, 0, "POISON must be an invalid descriptor");
    assert_eq!(
        POISON, 0x7f7f_7f7f_7f7f_7f7c,
        "SEMANTICS 'Memory and the allocator'"
    );
    for coherent in [true, false] {
        for e in drive_configs(f) {
            let small = e.page_sizes()[0];
            let p = e.level_of(small);
            if p == e.start {
                continue;
            }
            let t = e.table_span(p);
            if 8 * t > e.ia_size() {
                continue;
            }
            let what = format!("{e:?} coherent={coherent}");
            let mut cfg = e.config();
            cfg.coherent = coherent;
            let mut d = domain(cfg);
            let n = 1u64 << e.s();
            assert_eq!(d.map(t, 0, small, n, Prot::RW), Ok(n * small));
            assert_eq!(d.map(3 * t, 0, small, n, Prot::RW), Ok(n * small));
            assert_eq!(d.unmap(t, small, n), Ok(n * small));
            assert_eq!(d.unmap(3 * t, small, n), Ok(n * small));
            let freed: BTreeSet<u64> = d.tables().deferred().collect();
            assert_eq!(freed.len(), 2, "{what}");
            // Before the grace period: new tables come from elsewhere.
            assert_eq!(d.map(5 * t, 0, small, 1, Prot::RW), Ok(small));
            let (tables, _) = check_structure(&d, &e);
            for tb in &tables {
                assert!(
                    !freed.contains(&tb.pa),
                    "{what}: deferred table {:#x} reused early",
                    tb.pa
                );
            }
            let before = d.counters();
            d.grace_period();
            let c = d.counters();
            assert_eq!((c.deferred, c.freed), (0, before.freed + 2), "{what}");
            assert_eq!(d.tables().deferred().count(), 0);
            for &pa in &freed {
                assert_eq!(
                    d.tables().meta(pa).unwrap().state,
                    FrameState::Free,
                    "{what}"
                );
                for i in 0..e.granule_size() / 8 {
                    let a = pa + 8 * i;
                    assert_eq!(
                        d.mem().read_device(a),
                        Some(POISON),
                        "{what}: device word {a:#x}"
                    );
                    assert_eq!(
                        d.mem().cpu_view()[((a - d.mem().base()) / 8) as usize],
                        POISON,
                        "{what}: cpu word {a:#x}"
                    );
                }
            }
            check_structure(&d, &e);
            // New tables now come from the free list, zeroed.
            assert_eq!(d.map(7 * t, 9 * small, small, 1, Prot::READ), Ok(small));
            let (steps, _) = walk(&d, &e, 7 * t);
            let leaf_table = steps.last().unwrap().table;
            assert!(
                freed.contains(&leaf_table),
                "{what}: new table {leaf_table:#x} is not a released frame"
            );
            assert_eq!(d.counters().allocated, before.allocated + 1);
            for i in 0..e.granule_size() / 8 {
                let word = dev_word(&d, leaf_table + 8 * i);
                if i == e.index(7 * t, p) {
                    assert_ne!(word, 0);
                } else {
                    assert_eq!(word, 0, "{what}: reused table word {i} not zeroed");
                }
            }
            assert_eq!(d.lookup(7 * t + 3), Some(9 * small + 3));
            if !coherent {
                check_device_synced(&d, &what);
            }
        }
    }
}

/// `fail_nth_alloc(n)` for every n over a map that needs several tables: the n-th
/// allocation fails with `nomem`, the error carries the bytes mapped before, those pages
/// stay mapped, and tables allocated before the failure stay (empty, reachable).
fn fail_nth_for_every_n(f: FormatKind) {
    for e in drive_configs(f) {
        let small = e.page_sizes()[0];
        let p = e.level_of(small);
        if p == e.start {
            continue;
        }
        let t = e.table_span(p);
        let count = (1u64 << e.s()) + 2;
        let iova = t - small;
        if iova + count * small > e.ia_size() {
            continue;
        }
        let mut total = None;
        for n in 1.. {
            let what = format!("{e:?} fail_nth {n}");
            let mut d = domain_for(&e);
            let mut m = Model::new(e);
            d.fail_nth_alloc(Some(n));
            m.fail_nth = Some(n);
            let (want, fx) = m.map(iova, 0, small, count, Prot::RW);
            let got = d.map(iova, 0, small, count, Prot::RW);
            assert_eq!(got, want, "{what}");
            check_against_model(&d, &m, &what);
            match got {
                Ok(_) => {
                    assert_eq!(d.counters().failed, 0, "{what}");
                    total = Some(fx.allocated.len() as u64);
                    break;
                }
                Err(err) => {
                    assert_eq!(err.kind, ErrorKind::Nomem);
                    assert_eq!(d.counters().failed, 1, "{what}");
                    // Disarmed: the rest maps now.
                    let rest = err.mapped / small;
                    let (want, _) =
                        m.map(iova + err.mapped, err.mapped, small, count - rest, Prot::RW);
                    assert_eq!(want, Ok((count - rest) * small));
                    assert_eq!(
                        d.map(iova + err.mapped, err.mapped, small, count - rest, Prot::RW),
                        want,
                        "{what}: retry"
                    );
                    check_against_model(&d, &m, &format!("{what} after retry"));
                }
            }
        }
        let total = total.unwrap();
        // The path to the first page, plus one leaf table per table boundary crossed.
        assert_eq!(
            total,
            (p - e.start) as u64 + 2,
            "{e:?}: allocations of the run"
        );
    }
}

/// A failure on the second table of a fresh path: the first stays (empty, reachable) and is
/// freed by a later unmap covering its span.
#[test]
fn tables_of_a_failed_page_are_kept_then_freed_by_unmap() {
    let e = expected(Arm64S1, G4K, 48, 48).unwrap();
    let mut d = domain_for(&e);
    d.fail_nth_alloc(Some(2));
    assert_eq!(
        d.map(0, 0, K4, 1, Prot::RW),
        Err(MapError::new(ErrorKind::Nomem, 0))
    );
    assert_eq!(counters_tuple(&d), (2, 2, 0, 0), "root and the L1 table");
    assert_eq!(d.counters().failed, 1);
    let (tables, leaves) = check_structure(&d, &e);
    assert_eq!(tables.len(), 2);
    assert!(leaves.is_empty());
    assert_eq!(d.lookup(0), None);
    // 1G blocks over the L1 table's whole span, then one unmap frees it.
    assert_eq!(d.map(0, 0, G1, 512, Prot::RW), Ok(512 * G1));
    assert_eq!(d.unmap(0, G1, 512), Ok(512 * G1));
    assert_eq!(counters_tuple(&d), (2, 1, 1, 0));
    // The failure is one-shot.
    assert_eq!(d.map(0, 0, K4, 1, Prot::RW), Ok(K4));
    d.fail_nth_alloc(Some(3));
    d.fail_nth_alloc(None);
    assert_eq!(d.map(1 << 40, 0, K4, 1, Prot::RW), Ok(K4), "disarmed");
    assert_eq!(d.counters().failed, 1);
}

/// Tables must sit below 2^OAS (SEMANTICS "Memory and the allocator"): a table that would
/// have to go above it is `nomem`; released frames below it are still used.
#[test]
fn tables_are_never_placed_above_oas() {
    let mut cfg = config(Arm64S1, G4K, 48, 32);
    cfg.phys_base = (1 << 32) - 16 * K4; // room for 16 tables
    let e = expect_of(&cfg);
    let mut d = Domain::with_flush(cfg, FlushLog::default(), None).unwrap();
    // Region k (k GiB) needs an L2 and an L3 table; region 0 also the L1.
    assert_eq!(d.map(0, 0, K4, 1, Prot::RW), Ok(K4));
    for k in 1..7 {
        assert_eq!(d.map(k * G1, 0, K4, 1, Prot::RW), Ok(K4), "region {k}");
    }
    assert_eq!(d.counters().live, 16);
    assert_eq!(
        d.map(7 * G1, 0, K4, 1, Prot::RW),
        Err(MapError::new(ErrorKind::Nomem, 0)),
        "a 17th table would end above 2^32"
    );
    // A run that needs a new L3 table after some pages: stops after them.
    assert_eq!(
        d.map(G1 + M2 - 2 * K4, 0, K4, 4, Prot::RW),
        Err(MapError::new(ErrorKind::Nomem, 2 * K4))
    );
    let (tables, _) = check_structure(&d, &e);
    assert!(tables.iter().all(|t| t.pa + K4 <= 1 << 32));
    // Free region 6's L3 table (unmap its whole 2M span); after the grace period its frame
    // serves the L2 table region 7 needs.
    assert_eq!(d.map(6 * G1 + K4, K4, K4, 511, Prot::RW), Ok(511 * K4));
    assert_eq!(d.unmap(6 * G1, K4, 512), Ok(M2));
    d.grace_period();
    assert_eq!(
        d.map(7 * G1 + M2, 0, M2, 1, Prot::RW),
        Ok(M2),
        "an L2 table from the free list"
    );
    check_structure(&d, &e);
}

/// Custom allocator hooks are called with the cookie: alloc for every table (root included,
/// with its size), free for every table the grace period releases.
#[test]
fn custom_allocator_hooks_get_the_cookie() {
    for (f, g, ias, oas) in [
        (Arm64S1, G4K, 48, 48),
        (Arm64S2, G4K, 40, 40),
        (Arm64S2, G64K, 46, 48),
        (Arm64S1, G16K, 40, 40),
    ] {
        let cookie = 0xc0ff_ee00_1234_5678u64;
        let allocs = Rc::new(RefCell::new(Vec::<(u64, u64)>::new()));
        let frees = Rc::new(RefCell::new(Vec::<(u64, u64, u64)>::new()));
        let (a, fr) = (allocs.clone(), frees.clone());
        let custom = CustomAllocator {
            alloc: Some(Box::new(move |c, size| {
                a.borrow_mut().push((c, size));
                true
            })),
            free: Some(Box::new(move |c, pa, size| {
                fr.borrow_mut().push((c, pa, size))
            })),
            cookie,
        };
        let cfg = config(f, g, ias, oas);
        let e = expect_of(&cfg);
        let what = format!("{e:?}");
        let mut d = Domain::with_flush(cfg, FlushLog::default(), Some(custom)).unwrap();
        let root_size = e.root_tables() * e.granule_size();
        assert_eq!(
            *allocs.borrow(),
            vec![(cookie, root_size)],
            "{what}: root allocation"
        );
        let small = e.page_sizes()[0];
        let t = e.table_span(e.level_of(small));
        let n = 1u64 << e.s();
        assert_eq!(d.map(t, 0, small, n, Prot::RW), Ok(n * small));
        assert_eq!(
            allocs.borrow().len() as u64,
            d.counters().allocated,
            "{what}: one call per table"
        );
        assert!(
            allocs
                .borrow()
                .iter()
                .skip(1)
                .all(|&(c, s)| c == cookie && s == e.granule_size()),
            "{what}: {:?}",
            allocs.borrow()
        );
        for (pa, m) in d.tables().live_tables() {
            assert_eq!(m.owner, Owner::Custom(cookie), "{what}: table {pa:#x}");
        }
        assert_eq!(d.unmap(t, small, n), Ok(n * small));
        let deferred: Vec<u64> = d.tables().deferred().collect();
        assert_eq!(deferred.len(), 1);
        assert!(
            frees.borrow().is_empty(),
            "{what}: free hook called before the grace period"
        );
        d.grace_period();
        assert_eq!(
            *frees.borrow(),
            vec![(cookie, deferred[0], e.granule_size())],
            "{what}: free hook"
        );
    }
}

/// A custom allocator that refuses is `nomem`, with the bytes mapped before; refusing the
/// root refuses the domain.
#[test]
fn custom_allocator_refusal_is_nomem() {
    let allow = Rc::new(Cell::new(true));
    let a = allow.clone();
    let custom = CustomAllocator {
        alloc: Some(Box::new(move |_, _| a.get())),
        free: Some(Box::new(|_, _, _| {})),
        cookie: 7,
    };
    let e = expected(Arm64S1, G4K, 48, 48).unwrap();
    let mut d = Domain::with_flush(e.config(), FlushLog::default(), Some(custom)).unwrap();
    assert_eq!(d.map(M2 - 4 * K4, 0, K4, 2, Prot::RW), Ok(2 * K4));
    allow.set(false);
    assert_eq!(
        d.map(M2 - 2 * K4, 0, K4, 1, Prot::RW),
        Ok(K4),
        "no table needed: hook not asked"
    );
    let before = d.counters();
    assert_eq!(
        d.map(M2 - K4, 0, K4, 3, Prot::RW),
        Err(MapError::new(ErrorKind::Nomem, K4)),
        "needs the next L3"
    );
    assert_eq!(d.counters().failed, before.failed + 1);
    assert_eq!(d.counters().allocated, before.allocated);
    assert_eq!(d.lookup(M2 - 1), Some(K4 - 1));
    assert_eq!(d.lookup(M2), None);
    allow.set(true);
    assert_eq!(d.map(M2, 0, K4, 2, Prot::RW), Ok(2 * K4));
    check_structure(&d, &e);

    let never = CustomAllocator {
        alloc: Some(Box::new(|_, _| false)),
        free: Some(Box::new(|_, _, _| {})),
        cookie: 8,
    };
    let err = Domain::with_flush(e.config(), FlushLog::default(), Some(never)).err();
    assert!(err.is_some(), "a domain without a root");
}

/// A concatenated root counts as one table.
#[test]
fn concatenated_root_counts_once() {
    for e in all_ias().into_iter().filter(|e| e.root_tables() > 1) {
        let d = domain_for(&e);
        assert_eq!(counters_tuple(&d), (1, 1, 0, 0), "{e:?}");
        assert_eq!(d.tables().live_tables().count(), 1);
    }
}

// Per LPAE format (`arm64_s1::random_ops_keep_tables_and_counters_exact`, ...): this file's model and walker are LPAE.
per_format!(lpae: [random_ops_keep_tables_and_counters_exact, non_coherent_device_view_is_synced_after_every_op, non_coherent_reuse_of_poisoned_frames, grace_period_poisons_then_frames_are_reused_zeroed, fail_nth_for_every_n]);
