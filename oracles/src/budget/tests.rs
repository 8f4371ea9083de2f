//! The checker on hand-made event streams: one clean job, then each class of violation.

use ptfuzz_engine::{Counters, PoolEvent, PoolId};

use super::{BudgetChecker, OpContext};

const J1: PoolId = PoolId::Job(1);
const J2: PoolId = PoolId::Job(2);

fn c(allocated: u64, pooled: u64) -> Counters {
    Counters {
        allocated,
        pooled,
        ..Counters::default()
    }
}

fn reserve(pool: PoolId, pas: &[u64]) -> Vec<PoolEvent> {
    pas.iter()
        .map(|&pa| PoolEvent::Reserve { seq: 0, pa, pool })
        .collect()
}

/// Job 1 prepared with 3 pages (0x1000, 0x2000, 0x3000); job 2 with 1 (0x9000).
fn prepared() -> BudgetChecker {
    let mut b = BudgetChecker::new();
    let p1 = OpContext::Prepare { job: 1, worst: 3 };
    b.check_op(
        0,
        p1,
        &reserve(J1, &[0x1000, 0x2000, 0x3000]),
        &c(1, 0),
        &c(1, 3),
    )
    .unwrap();
    let p2 = OpContext::Prepare { job: 2, worst: 1 };
    b.check_op(1, p2, &reserve(J2, &[0x9000]), &c(1, 3), &c(1, 4))
        .unwrap();
    b
}

#[test]
fn a_clean_job_passes_and_is_counted() {
    let mut b = prepared();
    let take = [PoolEvent::Take {
        seq: 0,
        pa: 0x3000,
        pool: J1,
    }];
    b.check_op(
        2,
        OpContext::Run {
            job: 1,
            inside: true,
        },
        &take,
        &c(1, 4),
        &c(2, 3),
    )
    .unwrap();
    let back = reserve(J1, &[0x1000, 0x2000])
        .into_iter()
        .map(|e| match e {
            PoolEvent::Reserve { pa, pool, seq } => PoolEvent::Return { seq, pa, pool },
            e => e,
        })
        .collect::<Vec<_>>();
    b.check_op(3, OpContext::Cleanup { job: 1 }, &back, &c(2, 3), &c(2, 1))
        .unwrap();
    let back2 = [PoolEvent::Return {
        seq: 0,
        pa: 0x9000,
        pool: J2,
    }];
    b.check_op(4, OpContext::Cleanup { job: 2 }, &back2, &c(2, 1), &c(2, 0))
        .unwrap();
    let s = b.stats;
    assert_eq!(
        (
            s.prepared,
            s.run,
            s.abandoned,
            s.reserved,
            s.used,
            s.violations
        ),
        (2, 1, 1, 4, 1, 0)
    );
    assert!(s.to_string().contains("over-reservation=4.00x"), "{s}");
}

#[test]
fn a_global_allocation_during_a_run_is_flagged() {
    let mut b = prepared();
    let e = b
        .check_op(
            2,
            OpContext::Run {
                job: 1,
                inside: true,
            },
            &[],
            &c(1, 4),
            &c(2, 4),
        )
        .unwrap_err();
    assert!(e.what().contains("global allocator while job 1 ran"), "{e}");
}

#[test]
fn a_count_below_the_worst_case_is_flagged() {
    let mut b = BudgetChecker::new();
    let e = b
        .check_op(
            0,
            OpContext::Prepare { job: 1, worst: 3 },
            &reserve(J1, &[0x1000, 0x2000]),
            &c(1, 0),
            &c(1, 2),
        )
        .unwrap_err();
    assert!(e.what().contains("worst case is 3"), "{e}");
    let mut b = prepared();
    let dry = [PoolEvent::Dry { seq: 0, pool: J1 }];
    let e = b
        .check_op(
            2,
            OpContext::Run {
                job: 1,
                inside: true,
            },
            &dry,
            &c(1, 4),
            &c(1, 4),
        )
        .unwrap_err();
    assert!(e.what().contains("ran dry inside"), "{e}");
    // Outside its range, running dry is the documented `budget` stop, not a violation.
    let mut b = prepared();
    b.check_op(
        2,
        OpContext::Run {
            job: 1,
            inside: false,
        },
        &dry,
        &c(1, 4),
        &c(1, 4),
    )
    .unwrap();
}

#[test]
fn one_jobs_page_used_by_another_is_flagged() {
    let mut b = prepared();
    let take = [PoolEvent::Take {
        seq: 0,
        pa: 0x1000,
        pool: J2,
    }];
    let e = b
        .check_op(
            2,
            OpContext::Run {
                job: 2,
                inside: true,
            },
            &take,
            &c(1, 4),
            &c(2, 3),
        )
        .unwrap_err();
    assert!(e.what().contains("belongs to Some(Job(1))"), "{e}");
    let mut b = prepared();
    let e = b
        .check_op(
            2,
            OpContext::Prepare { job: 3, worst: 1 },
            &reserve(PoolId::Job(3), &[0x2000]),
            &c(1, 4),
            &c(1, 5),
        )
        .unwrap_err();
    assert!(e.what().contains("reserved again"), "{e}");
    // The right page, taken while another job runs.
    let mut b = prepared();
    let take = [PoolEvent::Take {
        seq: 0,
        pa: 0x9000,
        pool: J2,
    }];
    let e = b
        .check_op(
            2,
            OpContext::Run {
                job: 1,
                inside: true,
            },
            &take,
            &c(1, 4),
            &c(2, 3),
        )
        .unwrap_err();
    assert!(e.what().contains("was the source"), "{e}");
}

#[test]
fn leftovers_leaks_and_pins_are_flagged() {
    let mut b = prepared();
    let e = b
        .check_op(2, OpContext::Cleanup { job: 2 }, &[], &c(1, 4), &c(1, 4))
        .unwrap_err();
    assert!(e.what().contains("returned 0 page(s) of 1 left"), "{e}");
    let mut b = prepared();
    let e = b
        .check_op(2, OpContext::Other, &[], &c(1, 4), &c(1, 5))
        .unwrap_err();
    assert!(
        e.what()
            .contains("engine holds 5 pool page(s), the events account for 4"),
        "{e}"
    );
    let mut b = BudgetChecker::new();
    assert!(b.check_pins(0, 2, 2).is_ok());
    assert!(b
        .check_pins(0, 3, 2)
        .unwrap_err()
        .what()
        .contains("3 reservation pin(s), 2 expected"));
}

#[test]
fn reserved_ranges_neither_allocate_nor_free() {
    let mut b = BudgetChecker::new();
    let e = b
        .check_op(
            0,
            OpContext::Map { reserved: true },
            &[],
            &c(1, 0),
            &c(2, 0),
        )
        .unwrap_err();
    assert!(
        e.what().contains("map inside a reserved range allocated"),
        "{e}"
    );
    let freed = Counters {
        deferred: 1,
        ..c(2, 0)
    };
    let e = b
        .check_op(
            1,
            OpContext::Unmap { reserved: true },
            &[],
            &c(2, 0),
            &freed,
        )
        .unwrap_err();
    assert!(
        e.what().contains("unmap inside a reserved range freed 1"),
        "{e}"
    );
    // Outside any reservation both are fine.
    b.check_op(
        2,
        OpContext::Map { reserved: false },
        &[],
        &c(1, 0),
        &c(2, 0),
    )
    .unwrap();
}
