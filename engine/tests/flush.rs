//! TLB maintenance (SEMANTICS "TLB maintenance"): every removed leaf is invalidated before
//! unmap returns; every unlinked table gets a walk invalidation over its span before it is
//! freed; nothing is flushed where nothing was removed.

#[macro_use]
mod common;

use std::collections::BTreeSet;

use common::*;
use ptfuzz_engine::{FlushEvent, FormatKind, Granule, Prot};

use FormatKind::*;
use Granule::*;

/// Checks one op's flush requests against what the model says it removed and freed.
fn check_flushes(e: &Expect, r: &OpResult, what: &str) {
    let ev = &r.events;
    let freed: BTreeSet<(u32, u64)> = r.fx.freed.iter().copied().collect();
    for ev in ev {
        match *ev {
            FlushEvent::Walk {
                iova,
                size,
                granule,
            } => {
                assert_eq!(granule, e.granule_size(), "{what}: walk granule");
                // One walk flush per unlinked table, over exactly its span.
                assert!(
                    freed
                        .iter()
                        .any(|&(l, base)| base == iova && e.table_span(l) == size),
                    "{what}: walk flush {ev:?} matches no freed table (freed {:x?})",
                    r.fx.freed
                );
            }
            FlushEvent::Leaves { start, end, pgsize } => {
                assert!(e.page_sizes().contains(&pgsize), "{what}: {ev:?}");
                assert_eq!(start % pgsize, 0, "{what}: {ev:?}");
                assert_eq!((end + 1) % pgsize, 0, "{what}: {ev:?}");
            }
            FlushEvent::All => {}
        }
    }
    // Every freed table: covered by a walk flush in this op (its free is deferred to a later
    // grace period, so the flush precedes it).
    for &(l, base) in &r.fx.freed {
        assert!(
            walk_flushed(ev, base, e.table_span(l)),
            "{what}: freed table L{l} at {base:#x} not walk-flushed: {ev:?}"
        );
        let pa = r.tables_before[&(l, base)];
        assert!(
            r.new_deferred.contains(&pa),
            "{what}: freed table {pa:#x} not deferred"
        );
    }
    // Every removed leaf: gathered at its own size, or covered by its freed table's walk.
    for &(iova, size) in &r.fx.removed {
        let level = e.level_of(size);
        let in_freed = freed.contains(&(level, iova & !(e.table_span(level) - 1)));
        if in_freed {
            assert!(
                walk_flushed(ev, iova, size),
                "{what}: leaf {iova:#x} in a freed table, no walk flush"
            );
        } else {
            assert!(
                leaf_flushed(ev, iova, size),
                "{what}: leaf {iova:#x}+{size:#x} not flushed: {ev:?}"
            );
        }
    }
    if r.fx.removed.is_empty() && r.fx.freed.is_empty() {
        assert!(
            ev.is_empty(),
            "{what}: flushes where nothing was removed: {ev:?}"
        );
    }
}

fn random_ops_flush_every_removed_leaf_and_unlinked_table(f: FormatKind) {
    for e in drive_configs(f) {
        for seed in [5, 6] {
            drive(&e, true, seed, 120, |_, _, r| {
                let what = format!("{e:?} seed {seed} op {}: {:?}", r.index, r.op);
                check_flushes(&e, r, &what);
            });
        }
    }
}

/// SEMANTICS: "leaves removed as part of a freed table are covered by that walk flush and
/// are not added to the gather". Checked on its own because it is about redundant
/// invalidations, not missing ones.
fn leaves_of_freed_tables_are_not_gathered(f: FormatKind) {
    for e in drive_configs(f) {
        for seed in [5, 6, 7] {
            drive(&e, true, seed, 120, |_, _, r| {
                let what = format!("{e:?} seed {seed} op {}: {:?}", r.index, r.op);
                let freed: BTreeSet<(u32, u64)> = r.fx.freed.iter().copied().collect();
                for &(iova, size) in &r.fx.removed {
                    let level = e.level_of(size);
                    if freed.contains(&(level, iova & !(e.table_span(level) - 1))) {
                        let gathered = r.events.iter().any(|ev| {
                            matches!(*ev, FlushEvent::Leaves { start, end, .. } if start < iova + size && end >= iova)
                        });
                        assert!(
                            !gathered,
                            "{what}: leaf {iova:#x} of a freed table also gathered: {:?}",
                            r.events
                        );
                    }
                }
            });
        }
    }
}

/// A run of pages unmapped in one call is one leaf invalidation of exactly that range at
/// that page size (adjacent pages merge in the gather).
#[test]
fn unmapped_run_is_one_leaf_invalidation() {
    for e in sample() {
        for pg in e.page_sizes() {
            let mut d = domain_for(&e);
            let x = (e.ia_size() / 2).min(e.ia_size() - 3 * pg);
            assert_eq!(d.map(x, 0, pg, 3, Prot::RW), Ok(3 * pg));
            assert!(
                d.flush_ops().events.is_empty(),
                "{e:?}: map into empty slots flushed"
            );
            assert_eq!(d.unmap(x, pg, 3), Ok(3 * pg));
            assert_eq!(
                d.flush_ops().events,
                vec![FlushEvent::Leaves {
                    start: x,
                    end: x + 3 * pg - 1,
                    pgsize: pg
                }],
                "{e:?} pgsize {pg:#x}"
            );
            d.flush_ops_mut().events.clear();
            // Nothing there any more: nothing to flush.
            assert_eq!(d.unmap(x, pg, 3), Ok(0));
            assert!(
                d.flush_ops().events.is_empty(),
                "{e:?}: unmap of a hole flushed"
            );
        }
    }
}

/// Unmapping the whole span of a leaf table: its parent entry goes, one walk flush over its
/// span with the domain's granule, and the table is deferred.
#[test]
fn whole_table_unmap_is_walk_flushed() {
    for e in sample() {
        let small = e.page_sizes()[0];
        let p = e.level_of(small);
        if p == e.start {
            continue;
        }
        let t = e.table_span(p);
        if 2 * t > e.ia_size() {
            continue;
        }
        let mut d = domain_for(&e);
        let n = 1u64 << e.s();
        assert_eq!(d.map(t, 0, small, n, Prot::RW), Ok(n * small));
        let (steps, _) = walk(&d, &e, t);
        let table = steps.last().unwrap().table;
        assert_eq!(d.unmap(t, small, n), Ok(t));
        let ev = &d.flush_ops().events;
        assert!(
            ev.contains(&FlushEvent::Walk {
                iova: t,
                size: t,
                granule: e.granule_size()
            }),
            "{e:?}: {ev:?}"
        );
        assert_eq!(
            d.tables().deferred().collect::<Vec<_>>(),
            vec![table],
            "{e:?}"
        );
        let parent_slot = steps[steps.len() - 2].slot;
        assert_eq!(dev_word(&d, parent_slot), 0, "{e:?}: parent entry cleared");
    }
}

/// The same when the table is not full when its span is unmapped by a larger page size.
#[test]
fn larger_unmap_over_a_partial_table_is_walk_flushed() {
    for e in sample() {
        let sizes = e.page_sizes();
        if sizes.len() < 2 {
            continue;
        }
        let (small, big) = (sizes[0], sizes[1]);
        let mut d = domain_for(&e);
        assert_eq!(d.map(big + 3 * small, 0, small, 2, Prot::RW), Ok(2 * small));
        assert_eq!(d.map(2 * big, 0, big, 1, Prot::RW), Ok(big));
        assert_eq!(d.unmap(big, big, 2), Ok(2 * big));
        let ev = &d.flush_ops().events;
        assert!(
            ev.contains(&FlushEvent::Walk {
                iova: big,
                size: big,
                granule: e.granule_size()
            }),
            "{e:?}: {ev:?}"
        );
        assert!(
            leaf_flushed(ev, 2 * big, big),
            "{e:?}: the block is gathered: {ev:?}"
        );
        assert_eq!(d.counters().deferred, 1);
    }
}

/// A block replacing an empty table: the walk flush over the slot's span comes with the map.
#[test]
fn block_over_an_empty_table_is_walk_flushed() {
    let e = expected(Arm64S1, G4K, 48, 48).unwrap();
    let mut d = domain_for(&e);
    assert_eq!(d.map(G1 + 5 * K4, 0, K4, 1, Prot::RW), Ok(K4));
    assert_eq!(d.unmap(G1 + 5 * K4, K4, 1), Ok(K4));
    d.flush_ops_mut().events.clear();
    assert_eq!(d.map(G1, 0, G1, 1, Prot::RW), Ok(G1));
    assert_eq!(
        d.flush_ops().events,
        vec![FlushEvent::Walk {
            iova: G1,
            size: G1,
            granule: K4
        }],
        "one walk flush for the L2 table (and the L3 below it)"
    );
    assert_eq!(d.counters().deferred, 2);
}

/// Blocks filling a whole table, unmapped in one call: the table is freed with a walk flush
/// over its span, and its leaves are covered by it (SEMANTICS: not added to the gather).
#[test]
fn blocks_of_a_freed_table_are_covered_by_its_walk_flush() {
    for e in sample() {
        let sizes = e.page_sizes();
        let Some(&big) = sizes.get(1) else { continue };
        let p = e.level_of(big);
        if p == e.start {
            continue;
        }
        let t = e.table_span(p);
        let n = 1u64 << e.s();
        if 2 * t > e.ia_size() || e.oa_size() / big <= n {
            continue;
        }
        let what = format!("{e:?} {n} blocks of {big:#x} at {t:#x}");
        let mut d = domain_for(&e);
        assert_eq!(d.map(t, 0, big, n, Prot::RW), Ok(t), "{what}");
        let (steps, _) = walk(&d, &e, t);
        let table = steps.last().unwrap().table;
        d.flush_ops_mut().events.clear();
        assert_eq!(d.unmap(t, big, n), Ok(t), "{what}");
        let ev = d.flush_ops().events.clone();
        assert!(
            ev.contains(&FlushEvent::Walk {
                iova: t,
                size: t,
                granule: e.granule_size()
            }),
            "{what}: {ev:?}"
        );
        assert_eq!(
            d.tables().deferred().collect::<Vec<_>>(),
            vec![table],
            "{what}"
        );
        let gathered: Vec<&FlushEvent> = ev
            .iter()
            .filter(|x| matches!(x, FlushEvent::Leaves { .. }))
            .collect();
        assert!(
            gathered.is_empty(),
            "{what}: leaves of the freed table also gathered: {gathered:?}"
        );
    }
}

// Per LPAE format (`arm64_s1::random_ops_flush_every_removed_leaf_and_unlinked_table`, ...): this file's model and walker are LPAE.
per_format!(lpae: [random_ops_flush_every_removed_leaf_and_unlinked_table, leaves_of_freed_tables_are_not_gathered]);
