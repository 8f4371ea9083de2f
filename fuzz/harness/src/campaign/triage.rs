//! Crash triage: a new signature's trace is minimised (ops dropped while the same signature
//! persists), given the model's expectations, saved under `crashes/`, and replayed twice
//! from the saved text to prove it reproduces, deterministically, with the same signature.

use std::io;
use std::path::Path;

use super::minimize::{failure_of, minimize, Limits};
use super::report::CrashRecord;
use super::save::{crash_text, with_model_expectations, write_crash, Header};
use super::signature::{kind_of_signature, short_hash};
use crate::target::TargetName;
use crate::trace::{parse, Command, Trace};

/// `<target>-<hash of signature>.trace` (`<hash>.trace` when no target is known).
pub fn crash_file_name(target: Option<TargetName>, sig: &str) -> String {
    match target {
        Some(t) => format!("{t}-{}.trace", short_hash(sig)),
        None => format!("{}.trace", short_hash(sig)),
    }
}

/// Saves the crash `sig` into `dir` (file named by the target and the signature's hash, so
/// one signature found by two targets keeps both traces) and describes it.
/// `trace` is built only here, for a new signature; without one (`Err(note)`), what is
/// known is kept as comments. `first_input` is left 0 for the caller to set.
pub fn save(
    dir: &Path,
    target: Option<TargetName>,
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
            let name = crash_file_name(target, sig);
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
    let name = crash_file_name(target, sig);
    write_crash(&dir.join(&name), &h, &saved)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// One signature found by two targets: two files, each with its own trace.
    #[test]
    fn a_signature_from_two_targets_keeps_both_traces() {
        let dir = std::env::temp_dir().join(format!("ptfuzz-triage-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let text = |iova: u64| {
            format!(
                "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n\
                 lookup d0 iova={iova:#x} -> pa=0x5\n"
            )
        };
        let sig = "lookup: mismatch";
        let mut files = Vec::new();
        for (t, iova) in [
            (TargetName::Pagetable, 0x1000),
            (TargetName::Prealloc, 0x2000),
        ] {
            let trace = parse("t", &text(iova)).unwrap();
            let rec = save(
                &dir,
                Some(t),
                "test",
                sig,
                || Ok(trace),
                "m",
                Limits::default(),
            )
            .unwrap();
            files.push(rec.file);
        }
        assert_ne!(files[0], files[1]);
        for (f, iova) in files.iter().zip(["0x1000", "0x2000"]) {
            let name = f.trim_start_matches("crashes/");
            let saved = std::fs::read_to_string(dir.join(name)).unwrap();
            assert!(saved.contains(&format!("iova={iova}")), "{saved}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
