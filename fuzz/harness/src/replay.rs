//! Replays a trace against the engine and the reference model at once: every op must give
//! the same outcome from both (else a divergence), and the engine's outcome must meet the
//! line's stated expectation. The first failing line stops the file.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use ptfuzz_engine::{Domain, DomainConfig};
use ptfuzz_oracles::Model;

use crate::outcome::Outcome;
use crate::target::Target;
use crate::trace::{self, Command, Expect, ParseError, Trace, TraceLine};

/// What a passing replay did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// map/unmap/lookup commands run (domain lines not counted).
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

/// A declared domain: both implementations, or the line on which its creation was refused.
enum Slot {
    Live(Box<(Domain, Model)>),
    Refused(usize),
}

/// Runs `f`, turning a panic into a failure so one crashing trace does not hide the others.
fn guarded<T>(who: &'static str, f: impl FnOnce() -> T) -> Result<T, FailureKind> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let msg = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into());
        FailureKind::Panic { who, msg }
    })
}

/// Compares engine and model, then the engine against the expectation.
fn judge(engine: Outcome, model: Outcome, expected: Option<Expect>) -> Result<(), FailureKind> {
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

/// Replays a parsed trace; `file` labels failures.
pub fn replay(file: &str, trace: &Trace) -> Result<Stats, Failure> {
    let mut domains: HashMap<&str, Slot> = HashMap::new();
    let mut ops = 0;
    for tl in &trace.lines {
        let step = match &tl.command {
            Command::Domain { name, cfg } => create(cfg, tl).map(|slot| {
                domains.insert(name, slot);
            }),
            cmd => {
                ops += 1;
                run_op(domains.get_mut(cmd.domain()), tl)
            }
        };
        step.map_err(|kind| Failure {
            file: file.into(),
            line: tl.line,
            command: tl.command.clone(),
            kind: Box::new(kind),
        })?;
    }
    Ok(Stats { ops })
}

/// Creates engine domain and model; both must accept or both refuse. A domain line
/// without a tail must be accepted: a refusal is only fine when the trace expects it.
fn create(cfg: &DomainConfig, tl: &TraceLine) -> Result<Slot, FailureKind> {
    let engine = guarded("engine", || Domain::new(*cfg))?;
    let model = guarded("model", || Model::new(cfg))?;
    let e = Outcome::Domain(engine.as_ref().map(|_| ()).map_err(|c| c.kind()));
    let m = Outcome::Domain(model.as_ref().map(|_| ()).map_err(|k| *k));
    let ok = Expect {
        ok: true,
        ..Expect::default()
    };
    judge(e, m, Some(tl.expect.unwrap_or(ok)))?;
    Ok(match (engine, model) {
        (Ok(d), Ok(m)) => Slot::Live(Box::new((d, m))),
        _ => Slot::Refused(tl.line),
    })
}

/// Runs one map/unmap/lookup on both implementations of its domain and judges it.
fn run_op(slot: Option<&mut Slot>, tl: &TraceLine) -> Result<(), FailureKind> {
    let cmd = &tl.command;
    let (engine, model) = match slot {
        Some(Slot::Live(pair)) => &mut **pair,
        Some(Slot::Refused(line)) => {
            return Err(FailureKind::RefusedDomain {
                name: cmd.domain().into(),
                line: *line,
            })
        }
        // Only reachable for a trace built in memory: the parser rejects these.
        None => return Err(FailureKind::Undeclared(cmd.domain().into())),
    };
    let e = guarded("engine", || engine.apply(cmd))?.expect("op command");
    let m = guarded("model", || model.apply(cmd))?.expect("op command");
    judge(e, m, tl.expect)
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
        let k = guarded("engine", || panic!("boom {}", 1)).unwrap_err();
        assert_eq!(
            k,
            FailureKind::Panic {
                who: "engine",
                msg: "boom 1".into()
            }
        );
    }
}
