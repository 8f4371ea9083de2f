//! Saved crashes are traces whose expectations are the reference model's, so a saved crash
//! fails today and passes, unchanged, once the engine is fixed: it is a regression test
//! the moment it is written (move it to `corpus/regressions/` after the fix).

use std::io;
use std::path::Path;

use super::signature::quietly;
use crate::exec::{CheckedDomain, Created};
use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::{Command, Trace};

/// `trace` with every line's expectation set to the model's outcome: the outcome both sides
/// agreed on, the model's side of a divergence. Lines from the first failure of a domain
/// on (an oracle or a panic, where there is no model outcome to state) get none.
pub fn with_model_expectations(trace: &Trace) -> Trace {
    let mut out = trace.clone();
    let mut doms: Vec<(String, Option<Box<CheckedDomain>>)> = Vec::new();
    for l in &mut out.lines {
        l.expect = None;
        if let Command::Domain {
            name,
            cfg,
            custom_alloc,
        } = &l.command
        {
            let (d, model) = match quietly(|| CheckedDomain::create(cfg, *custom_alloc)) {
                Ok(Created::Both(d)) => (Some(d), None),
                Ok(Created::Refused(_)) => (
                    None,
                    Some(Outcome::Domain(Err(ptfuzz_engine::ErrorKind::Inval))),
                ),
                Ok(Created::Disagree { model, .. }) => (None, Some(model)),
                Err(_) => (None, None),
            };
            l.expect = model.map(|m| m.facts());
            doms.push((name.to_string(), d));
            continue;
        }
        let Some(slot) = doms
            .iter_mut()
            .rev()
            .find(|(n, _)| n == l.command.domain())
            .map(|(_, d)| d)
        else {
            continue;
        };
        let Some(d) = slot else { continue };
        match quietly(|| d.apply(&l.command)) {
            Ok(Ok(outcome)) => l.expect = Some(outcome.facts()),
            Ok(Err(FailureKind::Divergence { model, .. })) => {
                l.expect = Some(model.facts());
                *slot = None;
            }
            _ => *slot = None,
        }
    }
    out
}

/// What a crash file says about where the crash came from.
pub struct Header<'a> {
    pub signature: &'a str,
    pub found_by: &'a str,
    pub failure: &'a str,
}

/// Writes the crash file `path` (its folder made when missing).
pub fn write_crash(path: &Path, h: &Header, trace: &Trace) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, crash_text(h, trace))
}

/// The text of a crash file: the header as comments, then the trace.
pub fn crash_text(h: &Header, trace: &Trace) -> String {
    format!(
        "# signature: {}\n# found by: {}\n# failure: {}\n\
         # expectations are the reference model's: this trace fails until the engine is fixed\n{trace}",
        h.signature,
        h.found_by,
        h.failure.replace('\n', " "),
    )
}
