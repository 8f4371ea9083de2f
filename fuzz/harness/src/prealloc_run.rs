//! The `prealloc` target's pipeline: decode a [`PreallocInput`], run it through the
//! same checked executor as the page-table target (model, walker, TLB oracle, budget
//! checker, allocation guard); the first divergence stops it (`crate::target::Prealloc`).

use arbitrary::{Arbitrary, Unstructured};
use ptfuzz_oracles::budget::BudgetStats;

use crate::exec::{CheckedDomain, Created};
use crate::input::prealloc::{PreallocInput, PreallocResolver};
use crate::input::{resolve_config, Pools, MAX_OPS};
use crate::replay::FailureKind;
use crate::run::Crash;
use crate::trace::{Command, Trace, TraceLine};

pub fn decode_prealloc(data: &[u8]) -> Option<PreallocInput> {
    PreallocInput::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Runs `input`: its trace and budget totals, or the crash.
pub fn execute_prealloc(input: &PreallocInput) -> Result<(Trace, BudgetStats), Box<Crash>> {
    let (cfg, _) = resolve_config(&input.config);
    let dom = crate::trace::Name::Borrowed("d0");
    let mut trace = Trace::default();
    trace.lines.push(TraceLine {
        line: 1,
        command: Command::Domain {
            name: dom.clone(),
            cfg,
            custom_alloc: false,
        },
        expect: None,
    });
    let mut d = match CheckedDomain::create(&cfg, false) {
        Created::Both(d) => d,
        Created::Refused(why) => {
            panic!("resolved configuration refused by both sides: {why}: {cfg:?}")
        }
        Created::Disagree { engine, model } => {
            let kind = FailureKind::Divergence {
                engine,
                model,
                expected: None,
            };
            return Err(Box::new(Crash { op: 0, kind, trace }));
        }
    };
    let resolver = PreallocResolver {
        pools: Pools::new(d.model()),
        dom: dom.clone(),
    };
    let run_op = |d: &mut CheckedDomain, command: Command, i: usize, trace: &mut Trace| {
        let line = trace.lines.len() + 1;
        match d.apply(&command) {
            Ok(outcome) => {
                trace.lines.push(TraceLine {
                    line,
                    command,
                    expect: Some(outcome.facts()),
                });
                Ok(())
            }
            Err(kind) => {
                trace.lines.push(TraceLine {
                    line,
                    command,
                    expect: None,
                });
                Err(Box::new(Crash {
                    op: i,
                    kind,
                    trace: trace.clone(),
                }))
            }
        }
    };
    let ops = input.ops.len().min(MAX_OPS);
    for (i, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        let command = resolver.command(op, d.model());
        run_op(&mut d, command, i, &mut trace)?;
    }
    // Every pending job is cleaned up and every reservation dropped: nothing may leak.
    let jobs: Vec<u32> = d.model().jobs().map(|(j, _)| j).collect();
    for job in jobs {
        run_op(
            &mut d,
            Command::JobCleanup {
                dom: dom.clone(),
                job,
            },
            ops,
            &mut trace,
        )?;
    }
    let held: Vec<((u64, u64), u32)> = d.model().reservations().collect();
    for ((iova, size), n) in held {
        for _ in 0..n {
            run_op(
                &mut d,
                Command::Unreserve {
                    dom: dom.clone(),
                    iova,
                    size,
                },
                ops,
                &mut trace,
            )?;
        }
    }
    let c = d.engine().counters();
    if c.pooled != 0 {
        let div = ptfuzz_oracles::Divergence::new(
            ptfuzz_oracles::finding::BudgetFinding::LeakedAfterCleanup { pages: c.pooled },
        );
        return Err(Box::new(Crash {
            op: ops,
            kind: FailureKind::Oracle(div),
            trace,
        }));
    }
    if let Err(div) = d.check_all() {
        return Err(Box::new(Crash {
            op: ops,
            kind: FailureKind::Oracle(div),
            trace,
        }));
    }
    Ok((trace, d.budget_stats()))
}
