//! The `pagetable` target's pipeline: decode, resolve, execute; the first divergence stops
//! it with the op index, the oracle, both values and the trace (`crate::target::Pagetable`
//! holds the fuzz body every engine calls).

use arbitrary::{Arbitrary, Unstructured};

use crate::exec::{CheckedDomain, Created};
use crate::input::{resolve_config, Input, Pools, Resolver, MAX_OPS};
use crate::replay::FailureKind;
use crate::trace::{Command, Trace, TraceLine};

/// Why an input failed, with the trace that reproduces it (expectations = engine outcomes).
#[derive(Debug)]
pub struct Crash {
    /// 0-based index of the failing op (the domain line excluded).
    pub op: usize,
    pub kind: FailureKind,
    pub trace: Trace,
}

impl std::fmt::Display for Crash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "divergence at op {}: {}", self.op, self.kind)?;
        writeln!(f, "--- trace (replay with `ptfuzz replay FILE`) ---")?;
        write!(f, "{}", self.trace)
    }
}

/// Decodes bytes exactly as libFuzzer's `fuzz_target!(|input: Input|)` does, so corpus and
/// crash files move between engines.
pub fn decode(data: &[u8]) -> Option<Input> {
    Input::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Runs `input`, returning the trace it produced, or the crash.
pub fn execute(input: &Input) -> Result<Trace, Box<Crash>> {
    let (cfg, custom_alloc) = resolve_config(&input.config);
    let dom = crate::trace::Name::Borrowed("d0");
    let mut trace = Trace::default();
    trace.lines.push(TraceLine {
        line: 1,
        command: Command::Domain {
            name: dom.clone(),
            cfg,
            custom_alloc,
        },
        expect: None,
    });
    let mut d = match CheckedDomain::create(&cfg, custom_alloc) {
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
    let resolver = Resolver {
        pools: Pools::new(d.model()),
        dom,
    };
    for (i, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        let command = resolver.command(op, d.model());
        let line = trace.lines.len() + 1;
        match d.apply(&command) {
            Ok(outcome) => trace.lines.push(TraceLine {
                line,
                command,
                expect: Some(outcome.facts()),
            }),
            Err(kind) => {
                trace.lines.push(TraceLine {
                    line,
                    command,
                    expect: None,
                });
                return Err(Box::new(Crash { op: i, kind, trace }));
            }
        }
    }
    if let Err(div) = d.check_all() {
        let op = input.ops.len().min(MAX_OPS);
        return Err(Box::new(Crash {
            op,
            kind: FailureKind::Oracle(div),
            trace,
        }));
    }
    Ok(trace)
}
