//! The `ioasid` target's pipeline: decode, resolve each op against the model,
//! execute on engine and model (IOASID framework and both page-table domains); the first
//! divergence stops it with the op index, the rule or oracle, both values and the trace.

use arbitrary::{Arbitrary, Unstructured};
use ptfuzz_engine::ioasid::DomainId;

use super::input::{IoasidInput, MAX_IO_OPS};
use super::resolve::{command, domains};
use crate::exec::{CheckedDomain, CheckedIoasid, Created};
use crate::replay::FailureKind;
use crate::run::Crash;
use crate::trace::{Command, IoasidCommand, Trace, TraceLine};

/// Decodes bytes exactly as `fuzz_target!(|input: IoasidInput|)` does.
pub fn decode(data: &[u8]) -> Option<IoasidInput> {
    IoasidInput::arbitrary_take_rest(Unstructured::new(data)).ok()
}

/// Runs `input`, returning the trace it produced (expectations = outcomes), or the crash.
pub fn execute(input: &IoasidInput) -> Result<Trace, Box<Crash>> {
    let mut trace = Trace::default();
    let mut doms: Vec<(&str, Box<CheckedDomain>)> = Vec::new();
    for (name, cfg) in domains() {
        trace.lines.push(TraceLine {
            line: trace.lines.len() + 1,
            command: Command::Domain {
                name: name.into(),
                cfg,
                custom_alloc: false,
            },
            expect: None,
        });
        match CheckedDomain::create(&cfg, false) {
            Created::Both(d) => doms.push((name, d)),
            _ => panic!("the ioasid target's fixed domain {name} was refused: {cfg:?}"),
        }
    }
    let mut io = CheckedIoasid::new();
    for (i, op) in input.ops.iter().take(MAX_IO_OPS).enumerate() {
        let cmd = command(op, input, io.model());
        let step = match &cmd {
            Command::Ioasid(c) => {
                let bind_to = match c {
                    IoasidCommand::Bind { dom, .. } => doms
                        .iter()
                        .position(|(n, _)| n == dom)
                        .map(|i| DomainId(i as u32)),
                    _ => None,
                };
                let live: Vec<Option<&CheckedDomain>> =
                    doms.iter().map(|(_, d)| Some(&**d)).collect();
                io.apply(c, bind_to, &live)
            }
            c => {
                let d = doms
                    .iter_mut()
                    .find(|(n, _)| *n == c.domain())
                    .map(|(_, d)| d)
                    .expect("ops name the target's domains");
                d.apply(c)
            }
        };
        let line = trace.lines.len() + 1;
        match step {
            Ok(outcome) => trace.lines.push(TraceLine {
                line,
                command: cmd,
                expect: Some(outcome.facts()),
            }),
            Err(kind) => {
                trace.lines.push(TraceLine {
                    line,
                    command: cmd,
                    expect: None,
                });
                return Err(Box::new(Crash { op: i, kind, trace }));
            }
        }
    }
    for (_, d) in &mut doms {
        if let Err(div) = d.check_all() {
            let op = input.ops.len().min(MAX_IO_OPS);
            return Err(Box::new(Crash {
                op,
                kind: FailureKind::Oracle(div),
                trace,
            }));
        }
    }
    Ok(trace)
}
