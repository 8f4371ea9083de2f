//! `ptfuzz qemu FILE...`: replays traces against engine, model and QEMU, printing every
//! probe's outcome under the line that caused it.

use std::io::{self, Write};
use std::path::PathBuf;

use ptfuzz_oracles::qemu::oracle::{QemuOracle, Verdict};

use super::diff::{QemuDiff, Stop};
use super::session;
use crate::replay::judge;
use crate::trace::{self, Command, Expect};

/// What one file's replay did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QemuStats {
    pub ops: usize,
    pub probes: usize,
    pub deviations: usize,
}

/// Replays one parsed trace; prints probe lines to `out`; the error names the line.
pub fn replay_qemu(
    oracle: &mut QemuOracle,
    file: &str,
    trace: &trace::Trace,
    out: &mut dyn Write,
) -> Result<QemuStats, String> {
    let mut diff = QemuDiff::new(oracle).map_err(|e| format!("{file}: {e}"))?;
    let mut stats = QemuStats::default();
    for tl in &trace.lines {
        let at = |what: String| format!("{file}:{}: {}: {what}", tl.line, tl.command.word());
        let seen = diff.reports.len();
        let r = match &tl.command {
            Command::Domain {
                name,
                cfg,
                custom_alloc,
            } => {
                let ok = Expect {
                    ok: true,
                    ..Expect::default()
                };
                diff.create(name, cfg, *custom_alloc)
                    .map(|o| (o, Some(tl.expect.unwrap_or(ok))))
            }
            // PASIDs do not reach the QEMU stream (one context descriptor per stream).
            Command::Ioasid(_) => {
                return Err(at(
                    "not run against QEMU; replay IOASID traces with `ptfuzz replay`".into(),
                ))
            }
            cmd => {
                stats.ops += 1;
                diff.apply(cmd).map(|o| (o, tl.expect))
            }
        };
        for rep in &diff.reports[seen..] {
            stats.probes += 1;
            if let Verdict::Deviation(_) = rep.verdict {
                stats.deviations += 1;
            }
            writeln!(out, "  line {}: {rep}", tl.line).map_err(|e| e.to_string())?;
        }
        match r {
            Ok((o, expected)) => judge(o, o, expected).map_err(|k| at(k.to_string()))?,
            Err(Stop::Failure(k)) => return Err(at(k.to_string())),
            Err(Stop::Oracle(e)) => return Err(at(e.to_string())),
        };
    }
    match diff.finish() {
        Ok(()) => Ok(stats),
        Err(Stop::Failure(k)) => Err(format!("{file}: at the end: {k}")),
        Err(Stop::Oracle(e)) => Err(format!("{file}: at the end: {e}")),
    }
}

/// Replays every file against QEMU, writing `PASS`/`FAIL` per file; returns the failures.
pub fn replay_qemu_files(paths: &[PathBuf], out: &mut dyn Write) -> io::Result<usize> {
    let mut failed = 0;
    for p in paths {
        let name = p.display().to_string();
        let result = std::fs::read_to_string(p)
            .map_err(|e| format!("{name}: {e}"))
            .and_then(|text| trace::parse(&name, &text).map_err(|e| e.to_string()))
            .and_then(|t| {
                session::with_oracle(|o| Ok(replay_qemu(o, &name, &t, out)))
                    .map_err(|e| format!("{name}: {e}"))?
            });
        match result {
            Ok(s) => writeln!(
                out,
                "PASS {name} ({} ops, {} probes, {} known QEMU deviations)",
                s.ops, s.probes, s.deviations
            )?,
            Err(e) => {
                failed += 1;
                // A QEMU that failed mid-file is restarted for the next one.
                session::discard();
                writeln!(out, "FAIL {e}")?;
            }
        }
    }
    Ok(failed)
}
