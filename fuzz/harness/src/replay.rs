//! Replays a trace against the engine and the reference model at once: every op must give
//! the same outcome from both (else a divergence), and the engine's outcome must meet the
//! line's stated expectation. The first failing line stops the file.

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use ptfuzz_oracles::Divergence;

use ptfuzz_engine::ioasid::DomainId;
use ptfuzz_oracles::ioasid::Rule;

use crate::exec::{CheckedDomain, CheckedIoasid, Created};
use crate::outcome::Outcome;
use crate::trace::{self, Command, Expect, IoasidCommand, ParseError, Trace, TraceLine};

/// What a passing replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Commands run (domain lines not counted), `ioasid.*` included.
    pub ops: usize,
}

/// The first line of a trace that failed.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{file}:{line}: {command}: {kind}")]
pub struct Failure {
    pub file: String,
    pub line: usize,
    pub command: Command,
    /// Boxed to keep `Result<_, Failure>` small.
    pub kind: Box<FailureKind>,
}

/// Why a line failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// Engine and model disagree: one of them has a bug, whatever the trace expects.
    Divergence {
        engine: Outcome,
        model: Outcome,
        expected: Option<Expect>,
    },
    /// Both agree, but not with the trace.
    Mismatch { expected: Expect, actual: Outcome },
    /// An op on a domain whose creation was refused (on `line`).
    RefusedDomain { name: String, line: usize },
    /// An op on a domain never declared (only in traces built in memory).
    Undeclared(String),
    /// The engine or the model panicked.
    Panic { who: &'static str, msg: String },
    /// Engine and model agree on the result, but an oracle caught the engine's state.
    Oracle(Divergence),
    /// An `ioasid.*` command on which engine and model differ (the refusal reasons count),
    /// with the rule the model applied. Boxed: it is the largest failure.
    IoasidDivergence(Box<IoasidDivergence>),
}

/// Payload of [`FailureKind::IoasidDivergence`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IoasidDivergence {
    pub engine: Outcome,
    pub model: Outcome,
    /// The rule behind the model's result.
    pub rule: Rule,
    pub expected: Option<Expect>,
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailureKind::Divergence {
                engine,
                model,
                expected,
            } => {
                write!(f, "divergence: engine `{engine}`, model `{model}`")?;
                expected.map_or(Ok(()), |e| write!(f, " (expected `{e}`)"))
            }
            FailureKind::Mismatch { expected, actual } => {
                write!(f, "expected `{expected}`, got `{actual}`")
            }
            FailureKind::RefusedDomain { name, line } => {
                write!(f, "domain {name} was refused on line {line}")
            }
            FailureKind::Undeclared(name) => write!(f, "domain {name} not declared"),
            FailureKind::Panic { who, msg } => write!(f, "{who} panicked: {msg}"),
            FailureKind::Oracle(d) => write!(f, "{d}"),
            FailureKind::IoasidDivergence(d) => {
                let IoasidDivergence {
                    engine,
                    model,
                    rule,
                    expected,
                } = &**d;
                let why = |o: &Outcome| {
                    o.ioasid_reason()
                        .map(|r| format!(" ({r:?})"))
                        .unwrap_or_default()
                };
                write!(
                    f,
                    "divergence: engine `{engine}`{}, model `{model}`{} by {rule}",
                    why(engine),
                    why(model)
                )?;
                expected.map_or(Ok(()), |e| write!(f, " (expected `{e}`)"))
            }
        }
    }
}

/// Why a file did not pass: unreadable, malformed, or a failing line.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// A declared domain: checked engine and model, or the line on which it was refused.
enum Slot {
    Live(Box<CheckedDomain>),
    Refused(usize),
}

/// Compares engine and model, then the engine against the expectation.
pub(crate) fn judge(
    engine: Outcome,
    model: Outcome,
    expected: Option<Expect>,
) -> Result<(), FailureKind> {
    if engine != model {
        return Err(FailureKind::Divergence {
            engine,
            model,
            expected,
        });
    }
    match expected {
        Some(e) if !e.is_met_by(&engine.facts()) => Err(FailureKind::Mismatch {
            expected: e,
            actual: engine,
        }),
        _ => Ok(()),
    }
}

/// Replays a parsed trace; `file` labels failures. Every domain gets a final full check.
pub fn replay(file: &str, trace: &Trace) -> Result<Stats, Failure> {
    let mut domains: Vec<(&str, Slot)> = Vec::new();
    let mut ops = 0;
    let fail = |tl: &TraceLine, kind| Failure {
        file: file.into(),
        line: tl.line,
        command: tl.command.clone(),
        kind: Box::new(kind),
    };
    let mut io: Option<CheckedIoasid> = None;
    for tl in &trace.lines {
        let step = match &tl.command {
            Command::Domain {
                name,
                cfg,
                custom_alloc,
            } => create(cfg, *custom_alloc, tl).map(|slot| domains.push((name, slot))),
            // Only the QEMU oracle attaches streams (`ptfuzz qemu`); here it is a no-op.
            Command::Attach { .. } => {
                ops += 1;
                Ok(())
            }
            Command::Ioasid(c) => {
                ops += 1;
                run_ioasid_op(io.get_or_insert_with(CheckedIoasid::new), &domains, c, tl)
            }
            cmd => {
                ops += 1;
                let slot = domains
                    .iter_mut()
                    .rev()
                    .find(|(n, _)| *n == cmd.domain())
                    .map(|(_, s)| s);
                run_op(slot, tl)
            }
        };
        step.map_err(|kind| fail(tl, kind))?;
    }
    for (name, slot) in &mut domains {
        if let Slot::Live(d) = slot {
            if let Err(div) = d.check_all() {
                let last = trace
                    .lines
                    .iter()
                    .rev()
                    .find(|l| l.command.domain() == *name);
                return Err(fail(
                    last.expect("a declared domain has a line"),
                    FailureKind::Oracle(div),
                ));
            }
        }
    }
    Ok(Stats { ops })
}

/// Creates engine domain and model; both must accept or both refuse. A domain line
/// without a tail must be accepted: a refusal is only fine when the trace expects it.
fn create(
    cfg: &ptfuzz_engine::DomainConfig,
    custom_alloc: bool,
    tl: &TraceLine,
) -> Result<Slot, FailureKind> {
    let ok = Expect {
        ok: true,
        ..Expect::default()
    };
    let expected = Some(tl.expect.unwrap_or(ok));
    match crate::exec::checked::guarded("engine", || CheckedDomain::create(cfg, custom_alloc))? {
        Created::Both(d) => {
            let o = Outcome::Domain(Ok(()));
            judge(o, o, expected)?;
            Ok(Slot::Live(d))
        }
        Created::Refused(_) => {
            let o = Outcome::Domain(Err(ptfuzz_engine::ErrorKind::Inval));
            judge(o, o, expected)?;
            Ok(Slot::Refused(tl.line))
        }
        Created::Disagree { engine, model } => {
            judge(engine, model, expected).map(|_| unreachable!())
        }
    }
}

/// Runs one op on its domain (engine, model, oracles) and judges it.
fn run_op(slot: Option<&mut Slot>, tl: &TraceLine) -> Result<(), FailureKind> {
    let cmd = &tl.command;
    let d = match slot {
        Some(Slot::Live(d)) => d,
        Some(Slot::Refused(line)) => {
            return Err(FailureKind::RefusedDomain {
                name: cmd.domain().into(),
                line: *line,
            })
        }
        // Only reachable for a trace built in memory: the parser rejects these.
        None => return Err(FailureKind::Undeclared(cmd.domain().into())),
    };
    let outcome = d.apply(cmd).map_err(|k| match k {
        FailureKind::Divergence { engine, model, .. } => FailureKind::Divergence {
            engine,
            model,
            expected: tl.expect,
        },
        k => k,
    })?;
    judge(outcome, outcome, tl.expect)
}

/// Runs one `ioasid.*` command against the trace's IOASID framework and its domains.
fn run_ioasid_op(
    io: &mut CheckedIoasid,
    domains: &[(&str, Slot)],
    cmd: &IoasidCommand,
    tl: &TraceLine,
) -> Result<(), FailureKind> {
    let bind_to = match cmd {
        IoasidCommand::Bind { dom, .. } => match domains.iter().rposition(|(n, _)| n == dom) {
            Some(i) => match &domains[i].1 {
                Slot::Live(_) => Some(DomainId(i as u32)),
                Slot::Refused(line) => {
                    return Err(FailureKind::RefusedDomain {
                        name: dom.to_string(),
                        line: *line,
                    })
                }
            },
            None => return Err(FailureKind::Undeclared(dom.to_string())),
        },
        _ => None,
    };
    let live: Vec<Option<&CheckedDomain>> = domains
        .iter()
        .map(|(_, s)| match s {
            Slot::Live(d) => Some(&**d),
            Slot::Refused(_) => None,
        })
        .collect();
    let outcome = io
        .apply(cmd, bind_to, &live)
        .map_err(|k| with_expectation(k, tl.expect))?;
    judge(outcome, outcome, tl.expect)
}

/// A divergence found by the executor, labelled with what the trace line expected.
fn with_expectation(k: FailureKind, want: Option<Expect>) -> FailureKind {
    match k {
        FailureKind::Divergence { engine, model, .. } => FailureKind::Divergence {
            engine,
            model,
            expected: want,
        },
        FailureKind::IoasidDivergence(mut d) => {
            d.expected = want;
            FailureKind::IoasidDivergence(d)
        }
        k => k,
    }
}

/// Reads, parses and replays one file.
pub fn replay_file(path: &Path) -> Result<Stats, FileError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: name.clone(),
        source,
    })?;
    let trace = trace::parse(&name, &text)?;
    Ok(replay(&name, &trace)?)
}

/// Replays every file, writing `PASS path (N ops)` or `FAIL <error>` per file.
/// Returns the number of files that did not pass.
pub fn replay_files(paths: &[PathBuf], out: &mut dyn Write) -> io::Result<usize> {
    let mut failed = 0;
    for p in paths {
        match replay_file(p) {
            Ok(s) => writeln!(out, "PASS {} ({} ops)", p.display(), s.ops)?,
            Err(e) => {
                failed += 1;
                writeln!(out, "FAIL {e}")?;
            }
        }
    }
    Ok(failed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptfuzz_engine::{ErrorKind, MapError};

    /// Engine and model disagreeing is a divergence even when the engine meets the tail.
    #[test]
    fn divergence_beats_expectation() {
        let e = Outcome::Map(Ok(0x1000));
        let m = Outcome::Map(Err(MapError::new(ErrorKind::Exists, 0)));
        let want = Some(Expect {
            ok: true,
            ..Expect::default()
        });
        let k = judge(e, m, want).unwrap_err();
        assert_eq!(
            k.to_string(),
            "divergence: engine `ok mapped=0x1000`, model `err=exists mapped=0` (expected `ok`)"
        );
        assert!(judge(e, e, want).is_ok());
        assert!(judge(e, e, None).is_ok());
    }

    #[test]
    fn panics_become_failures() {
        let k = crate::exec::checked::guarded("engine", || panic!("boom {}", 1)).unwrap_err();
        assert_eq!(
            k,
            FailureKind::Panic {
                who: "engine",
                msg: "boom 1".into()
            }
        );
    }
}
