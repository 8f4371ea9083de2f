//! Delta debugging of a failing trace: drop chunks of op lines, then single lines, keeping
//! a candidate iff its replay still fails with the same signature. A 60-op fuzz trace
//! usually shrinks to the two or three ops that matter, which is what a reader needs.

use std::time::{Duration, Instant};

use super::signature::{panic_signature, quietly, signature};
use crate::replay::replay;
use crate::trace::{Command, Trace, TraceLine};

/// How much work one minimisation may do.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub replays: usize,
    pub time: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            replays: 2000,
            time: Duration::from_secs(10),
        }
    }
}

/// How a replay of a trace failed: its signature and a one-line message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failed {
    pub signature: String,
    pub message: String,
    /// The trace line that failed (none for a panic outside the executor's guards).
    pub line: Option<usize>,
}

/// Replays `trace` (panics caught), or `None` if it passes.
pub fn failure_of(trace: &Trace) -> Option<Failed> {
    match quietly(|| replay("trace", trace)) {
        Ok(Ok(_)) => None,
        Ok(Err(f)) => Some(Failed {
            signature: signature(&f.kind, f.command.word()),
            message: format!("line {}: {}: {}", f.line, f.command, f.kind),
            line: Some(f.line),
        }),
        Err(msg) => Some(Failed {
            signature: panic_signature(&msg),
            message: format!("panicked: {}", msg.lines().next().unwrap_or("")),
            line: None,
        }),
    }
}

/// The result of [`minimize`].
#[derive(Clone, Debug)]
pub struct Minimized {
    /// Lines renumbered from 1; expectations only on the line whose failure is kept.
    pub trace: Trace,
    /// The minimised trace's failure; `None` if even the input did not reproduce.
    pub failure: Option<Failed>,
    pub replays: usize,
}

/// Shrinks `trace`, which fails with `sig`. Expectations are removed from every line but
/// the failing one, so the lines left are there because the failure needs them, not
/// because a stale expectation of theirs would fail once an earlier op is gone.
pub fn minimize(trace: &Trace, sig: &str, limits: Limits) -> Minimized {
    let start = Instant::now();
    let mut cur = renumbered(trace.lines.clone());
    let Some(first) = failure_of(&Trace { lines: cur.clone() }) else {
        return Minimized {
            trace: Trace { lines: cur },
            failure: None,
            replays: 1,
        };
    };
    // The failing line keeps its expectation (a mismatch needs it); the rest lose theirs.
    for l in &mut cur {
        if Some(l.line) != first.line {
            l.expect = None;
        }
    }
    let mut replays = 1;
    let mut last = None;
    let mut reproduces = |lines: &[TraceLine], replays: &mut usize| {
        *replays += 1;
        let f = failure_of(&Trace {
            lines: lines.to_vec(),
        });
        let same = f.as_ref().is_some_and(|f| f.signature == sig);
        if same {
            last = f;
        }
        same
    };
    if first.signature != sig || !reproduces(&cur, &mut replays) {
        let failure = (first.signature == sig).then_some(first);
        return Minimized {
            trace: Trace { lines: cur },
            failure,
            replays,
        };
    }
    let out_of_budget =
        |replays: usize| replays >= limits.replays || start.elapsed() >= limits.time;
    let removable = |lines: &[TraceLine]| -> Vec<usize> {
        (0..lines.len())
            .filter(|&i| !matches!(lines[i].command, Command::Domain { .. }))
            .collect()
    };
    let mut chunk = removable(&cur).len().div_ceil(2).max(1);
    'shrink: loop {
        let mut progress = false;
        let mut i = 0;
        loop {
            let idx = removable(&cur);
            if i >= idx.len() {
                break;
            }
            if out_of_budget(replays) {
                break 'shrink;
            }
            let drop = &idx[i..(i + chunk).min(idx.len())];
            let candidate: Vec<TraceLine> = (0..cur.len())
                .filter(|j| !drop.contains(j))
                .map(|j| cur[j].clone())
                .collect();
            if reproduces(&candidate, &mut replays) {
                cur = candidate;
                progress = true;
            } else {
                i += chunk;
            }
        }
        if chunk == 1 && !progress {
            break;
        }
        chunk = (chunk / 2).max(1);
    }
    let cur = renumbered(cur);
    // Messages name line numbers: take the one of the renumbered trace.
    let failure = failure_of(&Trace { lines: cur.clone() }).or(last);
    Minimized {
        trace: Trace { lines: cur },
        failure,
        replays: replays + 1,
    }
}

fn renumbered(mut lines: Vec<TraceLine>) -> Vec<TraceLine> {
    for (i, l) in lines.iter_mut().enumerate() {
        l.line = i + 1;
    }
    lines
}
