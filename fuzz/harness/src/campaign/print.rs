//! `ptfuzz print`: what a raw fuzzer file (a libFuzzer or AFL crash or corpus entry) does,
//! as a readable trace. The bytes decode exactly as the fuzz targets decode them.

use std::io::{self, Write};
use std::path::PathBuf;

use super::signature::quietly;
use crate::run::{decode, execute, Crash};
use crate::trace::Trace;

/// Prints each file's trace (and failure) to `out`; problems with a file go to `err` and
/// the file is skipped. Returns how many files were unreadable, undecodable or failed.
pub fn print_files(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<usize> {
    print_with(paths, out, err, decode, |i| i.ops.len(), execute)
}

/// [`print_files`] for files of the `ioasid` target.
pub fn print_ioasid_files(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<usize> {
    use crate::ioasid as t;
    print_with(paths, out, err, t::decode, |i| i.ops.len(), t::execute)
}

fn print_with<I>(
    paths: &[PathBuf],
    out: &mut dyn Write,
    err: &mut dyn Write,
    decode: fn(&[u8]) -> Option<I>,
    ops: fn(&I) -> usize,
    execute: fn(&I) -> Result<Trace, Box<Crash>>,
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
        let Some(input) = decode(&data) else {
            bad += 1;
            writeln!(
                err,
                "{}: does not decode into an input; skipped",
                p.display()
            )?;
            continue;
        };
        writeln!(
            out,
            "# {} ({} bytes, {} ops)",
            p.display(),
            data.len(),
            ops(&input)
        )?;
        match quietly(|| execute(&input)) {
            Ok(Ok(trace)) => write!(out, "{trace}")?,
            Ok(Err(crash)) => {
                bad += 1;
                write!(out, "{}", crash.trace)?;
                writeln!(out, "# FAIL at op {}: {}", crash.op, crash.kind)?;
            }
            Err(panic) => {
                bad += 1;
                writeln!(out, "# FAIL: panicked: {panic}")?;
            }
        }
    }
    Ok(bad)
}
