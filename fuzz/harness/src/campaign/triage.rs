//! Crash triage: a new signature's trace is minimised (ops dropped while the same signature
//! persists), given the model's expectations, saved under `crashes/`, and replayed twice
//! from the saved text to prove it reproduces, deterministically, with the same signature.

use std::io;
use std::path::Path;

use super::minimize::{failure_of, minimize, Limits};
use super::report::CrashRecord;
use super::save::{crash_text, with_model_expectations, write_crash, Header};
use super::signature::{kind_of_signature, short_hash};
use crate::trace::{parse, Command, Trace};

/// Saves the crash `sig` into `dir` (file named by the signature's hash) and describes it.
/// `trace` is built only here, for a new signature; without one (`Err(note)`), what is
/// known is kept as comments. `first_input` is left 0 for the caller to set.
pub fn save(
    dir: &Path,
    found_by: &str,
    sig: &str,
    trace: impl FnOnce() -> Result<Trace, String>,
    msg: &str,
    limits: Limits,
) -> io::Result<CrashRecord> {
    let ops = |t: &Trace| {
        t.lines
            .iter()
            .filter(|l| !matches!(l.command, Command::Domain { .. }))
            .count()
    };
    let trace = match trace() {
        Ok(t) => t,
        Err(note) => {
            std::fs::create_dir_all(dir)?;
            let name = format!("{}.trace", short_hash(sig));
            let text =
                format!("# signature: {sig}\n# found by: {found_by}\n# failure: {msg}\n{note}");
            std::fs::write(dir.join(&name), text)?;
            return Ok(CrashRecord {
                signature: sig.to_string(),
                kind: kind_of_signature(sig).map(str::to_string),
                file: format!("crashes/{name}"),
                first_input: 0,
                count: 1,
                ops_before_minimise: 0,
                ops_after_minimise: 0,
                failure: msg.to_string(),
                reproduces: false,
            });
        }
    };
    let min = minimize(&trace, sig, limits);
    let saved = with_model_expectations(&min.trace);
    // The failure as the saved file fails, so its line numbers are the file's; twice, so a
    // crash that only sometimes fails is not called reproducible.
    let probe = crash_text(
        &Header {
            signature: sig,
            found_by,
            failure: "",
        },
        &saved,
    );
    let replay = || parse("crash", &probe).ok().and_then(|t| failure_of(&t));
    let (first, second) = (replay(), replay());
    let reproduces = first.as_ref().is_some_and(|f| f.signature == sig)
        && second.as_ref().is_some_and(|f| f.signature == sig);
    let failure = match first {
        Some(f) if reproduces => f.message,
        _ => min.failure.map_or_else(|| msg.to_string(), |f| f.message),
    };
    let h = Header {
        signature: sig,
        found_by,
        failure: &failure,
    };
    let name = write_crash(dir, &h, &saved)?;
    Ok(CrashRecord {
        signature: sig.to_string(),
        kind: kind_of_signature(sig).map(str::to_string),
        file: format!("crashes/{name}"),
        first_input: 0,
        count: 1,
        ops_before_minimise: ops(&trace),
        ops_after_minimise: ops(&saved),
        failure,
        reproduces,
    })
}
