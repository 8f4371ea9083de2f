//! `ptfuzz print`: what a raw fuzzer file (a libFuzzer or AFL crash or corpus entry) of any
//! target does, as a readable trace. The bytes decode exactly as the fuzz targets decode them.

use std::io::{self, Write};
use std::path::PathBuf;

use crate::target::{Stop, TargetName};

/// Prints each file's trace (and failure) to `out`; problems with a file go to `err` and
/// the file is skipped. Returns how many files were unreadable, undecodable or failed.
pub fn print_target_files(
    t: TargetName,
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<usize> {
    let mut bad = 0;
    for p in paths {
        let data = match std::fs::read(p) {
            Ok(d) => d,
            Err(e) => {
                bad += 1;
                writeln!(err, "{}: {e}", p.display())?;
                continue;
            }
        };
        let Some((ops, ran)) = t.target().trace_bytes(&data) else {
            bad += 1;
            writeln!(
                err,
                "{}: does not decode into an input of {t}; skipped",
                p.display()
            )?;
            continue;
        };
        writeln!(out, "# {} ({} bytes, {ops} ops)", p.display(), data.len())?;
        match ran {
            Ok(Ok(trace)) => write!(out, "{trace}")?,
            Ok(Err(Stop::Crash(crash))) => {
                bad += 1;
                write!(out, "{}", crash.trace)?;
                writeln!(out, "# FAIL at op {}: {}", crash.op, crash.kind)?;
            }
            Ok(Err(Stop::Unjudged(why))) => {
                bad += 1;
                writeln!(out, "# NOT JUDGED: {}", why.replace('\n', "\n# "))?;
            }
            Err(panic) => {
                bad += 1;
                writeln!(out, "# FAIL: panicked: {panic}")?;
            }
        }
    }
    Ok(bad)
}

/// [`print_target_files`] for the `pagetable` target.
pub fn print_files(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<usize> {
    print_target_files(TargetName::Pagetable, paths, out, err)
}

/// [`print_target_files`] for the `ioasid` target.
pub fn print_ioasid_files(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<usize> {
    print_target_files(TargetName::Ioasid, paths, out, err)
}
