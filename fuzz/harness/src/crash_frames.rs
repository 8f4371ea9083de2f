//! Where a fuzz target panics. ClusterFuzz (OSS-Fuzz, ClusterFuzzLite) groups crashes by the
//! top frames of the crashing stack (skipping the panic machinery), and every finding used
//! to panic from the same line of `run`, so there every bug would have merged into one
//! report. Now a finding panics from a function named for the command that failed, called
//! from one named for the finding's kind (`kind_walker_leaf_output_address`), called from one
//! named for its oracle (or for a divergence, a mismatch, a panic), so the crash state
//! ClusterFuzz computes (its top three frames) is our signature's (oracle, kind, command).
//! Each function is never inlined, and its body differs (its own name is in it) so that
//! identical-function merging cannot fold two of them into one symbol.

use ptfuzz_oracles::OracleId;

use crate::replay::FailureKind;
use crate::run::Crash;

/// Panics with `c`'s message from the frames that name it.
#[inline(never)]
pub fn panic_with(c: &Crash) -> ! {
    match &c.kind {
        FailureKind::Divergence { .. } => divergence(c),
        FailureKind::Mismatch { .. } => expectation_mismatch(c),
        FailureKind::RefusedDomain { .. } | FailureKind::Undeclared(_) => domain_refused(c),
        FailureKind::Panic { .. } => panic_in_engine_or_model(c),
        FailureKind::IoasidDivergence(_) => ioasid_divergence(c),
        FailureKind::Oracle(d) => match d.oracle() {
            OracleId::Walker => oracle_walker(c, d.kind()),
            OracleId::Structure => oracle_structure(c, d.kind()),
            OracleId::Tlb => oracle_tlb(c, d.kind()),
            OracleId::Accounting => oracle_accounting(c, d.kind()),
            OracleId::Counters => oracle_counters(c, d.kind()),
            OracleId::Budget => oracle_budget(c, d.kind()),
            OracleId::AllocGuard => oracle_alloc_guard(c, d.kind()),
            OracleId::AllocHooks => oracle_alloc_hooks(c, d.kind()),
            OracleId::IoasidState => oracle_ioasid_state(c, d.kind()),
            OracleId::IoasidConsistency => oracle_ioasid_consistency(c, d.kind()),
            OracleId::Qemu => oracle_qemu(c, d.kind()),
        },
    }
}

/// Calls `$cb!` with its arguments and then every finding kind and the name of its frame.
macro_rules! with_kinds {
    ($cb:ident!($($args:tt)*)) => {
        $cb!($($args)*;
            "walker/model-config" => kind_walker_model_config,
            "walker/mapped-faults" => kind_walker_mapped_faults,
            "walker/leaf-output-address" => kind_walker_leaf_output_address,
            "walker/leaf-size" => kind_walker_leaf_size,
            "walker/leaf-attributes" => kind_walker_leaf_attributes,
            "walker/table-descriptor-bits" => kind_walker_table_descriptor_bits,
            "walker/unmapped-wrong-fault" => kind_walker_unmapped_wrong_fault,
            "walker/unmapped-translates" => kind_walker_unmapped_translates,
            "walker/leaf-differs-from-model" => kind_walker_leaf_differs_from_model,
            "walker/leaf-not-in-model" => kind_walker_leaf_not_in_model,
            "walker/model-leaf-missing" => kind_walker_model_leaf_missing,
            "walker/leaf-count" => kind_walker_leaf_count,
            "walker/short-malformed" => kind_walker_short_malformed,
            "walker/short-leaf-differs" => kind_walker_short_leaf_differs,
            "structure/table-outside-memory" => kind_structure_table_outside_memory,
            "structure/table-target-not-live" => kind_structure_table_target_not_live,
            "structure/poison-reachable" => kind_structure_poison_reachable,
            "structure/malformed-descriptor" => kind_structure_malformed_descriptor,
            "structure/table-attribute-bits" => kind_structure_table_attribute_bits,
            "structure/root-beyond-oas" => kind_structure_root_beyond_oas,
            "structure/root-misaligned" => kind_structure_root_misaligned,
            "structure/root-metadata" => kind_structure_root_metadata,
            "structure/root-tail" => kind_structure_root_tail,
            "structure/root-word-beyond-entries" => kind_structure_root_word_beyond_entries,
            "structure/table-reachable-twice" => kind_structure_table_reachable_twice,
            "structure/live-entry-count" => kind_structure_live_entry_count,
            "structure/counters-inconsistent" => kind_structure_counters_inconsistent,
            "structure/leak" => kind_structure_leak,
            "structure/live-counter" => kind_structure_live_counter,
            "structure/live-metadata" => kind_structure_live_metadata,
            "structure/deferred-count" => kind_structure_deferred_count,
            "structure/free-frame-written" => kind_structure_free_frame_written,
            "structure/table-in-free-host-page" => kind_structure_table_in_free_host_page,
            "structure/table-not-in-model" => kind_structure_table_not_in_model,
            "structure/model-table-missing" => kind_structure_model_table_missing,
            "structure/tables-overlap" => kind_structure_tables_overlap,
            "tlb/table-linked-twice" => kind_tlb_table_linked_twice,
            "tlb/bbm-not-invalidated" => kind_tlb_bbm_not_invalidated,
            "tlb/bbm-replaced-in-place" => kind_tlb_bbm_replaced_in_place,
            "tlb/reused-before-grace" => kind_tlb_reused_before_grace,
            "tlb/root-deferred" => kind_tlb_root_deferred,
            "tlb/freed-while-linked" => kind_tlb_freed_while_linked,
            "tlb/freed-before-walk-invalidation" => kind_tlb_freed_before_walk_invalidation,
            "tlb/stale-translation" => kind_tlb_stale_translation,
            "accounting/free-list-length" => kind_accounting_free_list_length,
            "accounting/deferred-list-length" => kind_accounting_deferred_list_length,
            "accounting/pool-length" => kind_accounting_pool_length,
            "accounting/reachable-not-live" => kind_accounting_reachable_not_live,
            "accounting/not-tail" => kind_accounting_not_tail,
            "accounting/live-count" => kind_accounting_live_count,
            "accounting/wrong-state-in-list" => kind_accounting_wrong_state_in_list,
            "accounting/outside-window" => kind_accounting_outside_window,
            "accounting/frame-in-two-places" => kind_accounting_frame_in_two_places,
            "accounting/unaccounted" => kind_accounting_unaccounted,
            "accounting/freed-without-poison" => kind_accounting_freed_without_poison,
            "accounting/free-list-page-state" => kind_accounting_free_list_page_state,
            "accounting/partial-list-page" => kind_accounting_partial_list_page,
            "accounting/partial-list-twice" => kind_accounting_partial_list_twice,
            "accounting/partial-slots" => kind_accounting_partial_slots,
            "accounting/host-page-lost" => kind_accounting_host_page_lost,
            "accounting/slot-lost" => kind_accounting_slot_lost,
            "accounting/carved-empty" => kind_accounting_carved_empty,
            "accounting/page-used-count" => kind_accounting_page_used_count,
            "accounting/partial-membership" => kind_accounting_partial_membership,
            "accounting/host-page-count" => kind_accounting_host_page_count,
            "counters/allocated" => kind_counters_allocated,
            "counters/live" => kind_counters_live,
            "counters/deferred" => kind_counters_deferred,
            "counters/freed" => kind_counters_freed,
            "counters/failed" => kind_counters_failed,
            "counters/pooled" => kind_counters_pooled,
            "counters/backed-frames" => kind_counters_backed_frames,
            "budget/page-reserved-twice" => kind_budget_page_reserved_twice,
            "budget/took-foreign-page" => kind_budget_took_foreign_page,
            "budget/pool-not-the-source" => kind_budget_pool_not_the_source,
            "budget/returned-foreign-page" => kind_budget_returned_foreign_page,
            "budget/pool-dry-inside-range" => kind_budget_pool_dry_inside_range,
            "budget/global-allocation-during-job" => kind_budget_global_allocation_during_job,
            "budget/reserve-outside-batch" => kind_budget_reserve_outside_batch,
            "budget/reserve-batch-not-installed" => kind_budget_reserve_batch_not_installed,
            "budget/reserved-map-allocated" => kind_budget_reserved_map_allocated,
            "budget/reserved-unmap-freed" => kind_budget_reserved_unmap_freed,
            "budget/worst-case-too-low" => kind_budget_worst_case_too_low,
            "budget/leftovers-not-returned" => kind_budget_leftovers_not_returned,
            "budget/pool-pages-outside-run" => kind_budget_pool_pages_outside_run,
            "budget/pool-pages-unaccounted" => kind_budget_pool_pages_unaccounted,
            "budget/reservation-pins" => kind_budget_reservation_pins,
            "budget/pool-leaked-after-cleanup" => kind_budget_pool_leaked_after_cleanup,
            "alloc-guard/heap-in-no-alloc" => kind_alloc_guard_heap_in_no_alloc,
            "alloc-hooks/calls-differ-from-counters" => kind_alloc_hooks_calls_differ_from_counters,
            "ioasid-state/active-allocator" => kind_ioasid_state_active_allocator,
            "ioasid-state/outstanding" => kind_ioasid_state_outstanding,
            "ioasid-state/groups" => kind_ioasid_state_groups,
            "ioasid-state/allocator-calls" => kind_ioasid_state_allocator_calls,
            "ioasid-state/bindings" => kind_ioasid_state_bindings,
            "ioasid-consistency/invariant-broken" => kind_ioasid_consistency_invariant_broken,
            "qemu/stale-translation" => kind_qemu_stale_translation,
            "qemu/translation-mismatch" => kind_qemu_translation_mismatch,
        );
    };
}

/// The frames of the oracles; each calls the frame of the finding's kind straight away (the
/// match on the kind is expanded into each, so no frame sits between the two).
macro_rules! oracle_frames {
    ($($name:ident),* $(,)?) => {$(
        with_kinds!(oracle_frame!($name));
    )*};
}

macro_rules! oracle_frame {
    ($name:ident; $($kind:literal => $frame:ident),* $(,)?) => {
        #[inline(never)]
        #[cold]
        fn $name(c: &Crash, kind: &str) -> ! {
            std::hint::black_box(stringify!($name));
            match kind {
                $($kind => $frame(c),)*
                _ => kind_other(c),
            }
        }
    };
}

/// One frame per finding kind, and the frame name of each kind (for tests: every kind an
/// oracle declares has its own frame).
macro_rules! kind_frames {
    (; $($kind:literal => $name:ident),* $(,)?) => {
        /// The name of the frame a finding of `kind` panics through.
        pub fn kind_frame(kind: &str) -> &'static str {
            match kind {
                $($kind => stringify!($name),)*
                _ => "kind_other",
            }
        }

        frames!($($name,)* kind_other);
    };
}

/// The frames of the kinds of finding; each calls the command frame straight away (the
/// choice is a macro, not a function, so no frame sits between the two).
macro_rules! frames {
    ($($name:ident),* $(,)?) => {$(
        #[inline(never)]
        #[cold]
        fn $name(c: &Crash) -> ! {
            std::hint::black_box(stringify!($name));
            by_command!(c)
        }
    )*};
}

/// The command that failed is the last line of the crash's trace.
macro_rules! by_command {
    ($c:expr) => {
        match $c.trace.lines.last().map_or("domain", |l| l.command.word()) {
            "map" => cmd_map($c),
            "unmap" => cmd_unmap($c),
            "lookup" => cmd_lookup($c),
            "grace" => cmd_grace($c),
            "fail_nth" => cmd_fail_nth($c),
            "clear" => cmd_clear($c),
            "sync" => cmd_sync($c),
            "attach" => cmd_attach($c),
            "job.prepare" => cmd_job_prepare($c),
            "job.run" => cmd_job_run($c),
            "job.cleanup" => cmd_job_cleanup($c),
            "reserve" => cmd_reserve($c),
            "unreserve" => cmd_unreserve($c),
            "domain" => cmd_domain($c),
            w if w.starts_with("ioasid.") => cmd_ioasid($c),
            _ => cmd_other($c),
        }
    };
}

/// The innermost frames, one per command; each panics itself.
macro_rules! command_frames {
    ($($name:ident),* $(,)?) => {$(
        #[inline(never)]
        #[cold]
        fn $name(c: &Crash) -> ! {
            std::hint::black_box(stringify!($name));
            panic!("{c}")
        }
    )*};
}

frames!(
    divergence,
    expectation_mismatch,
    domain_refused,
    panic_in_engine_or_model,
    ioasid_divergence,
);

oracle_frames!(
    oracle_walker,
    oracle_structure,
    oracle_tlb,
    oracle_accounting,
    oracle_counters,
    oracle_budget,
    oracle_alloc_guard,
    oracle_alloc_hooks,
    oracle_ioasid_state,
    oracle_ioasid_consistency,
    oracle_qemu,
);

with_kinds!(kind_frames!());

command_frames!(
    cmd_map,
    cmd_unmap,
    cmd_lookup,
    cmd_grace,
    cmd_fail_nth,
    cmd_clear,
    cmd_sync,
    cmd_attach,
    cmd_job_prepare,
    cmd_job_run,
    cmd_job_cleanup,
    cmd_reserve,
    cmd_unreserve,
    cmd_domain,
    cmd_ioasid,
    cmd_other,
);

#[cfg(test)]
mod tests {
    use std::process::Command;

    use ptfuzz_oracles::finding::{Counter, CounterFinding, TlbFinding};
    use ptfuzz_oracles::Divergence;

    use super::*;
    use crate::trace::parse;

    const CHILD: &str = "PTFUZZ_CRASH_FRAMES_CHILD";

    /// A finding of each of three kinds (two of the TLB oracle whose messages start alike).
    fn finding(which: &str) -> Divergence {
        let stale = TlbFinding::StaleTranslation {
            op: 1,
            iova: 0x1000,
            entry: "leaf",
            level: 3,
            old: 0x4000_0703,
            slot: 0x4000_3008,
            last: 0x1fff,
            seq: 4,
            under: None,
            more: 0,
        };
        match which {
            "stale" => Divergence::new(stale),
            "bbm" => Divergence::new(TlbFinding::BbmInPlace {
                op: 1,
                iova: 0x1000,
                level: 3,
                old: 0x4000_0703,
                new: 0x4000_1703,
                slot: 0x4000_3008,
                seq: 4,
            }),
            "counter" => Divergence::new(CounterFinding::new(Counter::Live, 3, 2)),
            w => panic!("no finding {w}"),
        }
    }

    /// Panics as a fuzz target would, when the parent test asks for it (`finding/command`).
    #[test]
    fn child() {
        let Ok(which) = std::env::var(CHILD) else {
            return;
        };
        let (which, last) = which.split_once('/').unwrap();
        let trace = parse(
            "t",
            &format!("domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n{last}\n"),
        )
        .unwrap();
        let kind = FailureKind::Oracle(finding(which));
        panic_with(&Crash { op: 0, kind, trace });
    }

    /// The names of this module's functions on the stack of the child's panic, innermost first
    /// (a child process: a panic hook is global, and other tests run beside this one).
    fn frames_of(finding: &str, command: &str) -> Vec<String> {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_frames::tests::child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{finding}/{command}"))
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.trim().split_once(": ").map(|(_, f)| f.to_string()))
            .filter(|f| f.contains("crash_frames::") && !f.contains("tests::"))
            .map(|f| f.rsplit("::").next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn each_kind_and_command_panics_from_its_own_frames() {
        // Innermost first: the command, the kind, the oracle (ClusterFuzz's three), the entry.
        let unmap = "unmap d0 iova=0x1000 pgsize=4k count=1";
        assert_eq!(
            frames_of("stale", unmap),
            [
                "cmd_unmap",
                "kind_tlb_stale_translation",
                "oracle_tlb",
                "panic_with"
            ]
        );
        assert_eq!(
            frames_of("bbm", unmap),
            [
                "cmd_unmap",
                "kind_tlb_bbm_replaced_in_place",
                "oracle_tlb",
                "panic_with"
            ]
        );
        assert_eq!(
            frames_of("counter", unmap),
            [
                "cmd_unmap",
                "kind_counters_live",
                "oracle_counters",
                "panic_with"
            ]
        );
        let map = "map d0 iova=0x1000 pa=0x1000 pgsize=4k count=1 prot=r";
        assert_eq!(
            frames_of("stale", map),
            [
                "cmd_map",
                "kind_tlb_stale_translation",
                "oracle_tlb",
                "panic_with"
            ]
        );
    }

    /// Every kind any oracle declares has a frame of its own, named for it.
    #[test]
    fn every_kind_has_its_frame() {
        let mut seen = std::collections::HashSet::new();
        for o in OracleId::ALL {
            for kind in o.kinds() {
                let f = kind_frame(kind);
                assert_eq!(
                    f,
                    format!("kind_{}", kind.replace(['/', '-'], "_")),
                    "{kind}"
                );
                assert!(seen.insert(f), "{kind} shares frame {f}");
            }
        }
        assert_eq!(kind_frame("walker/no-such-kind"), "kind_other");
    }
}
