//! `ptfuzz repro FILE...`: one command for whatever a crash left behind. A file that parses
//! as a trace is replayed as its target judges it (engine, model, oracles; through QEMU
//! too for `--target qemu_diff`, or when it attaches a stream); anything else is a raw fuzzer input (libFuzzer or AFL crash, OSS-Fuzz testcase,
//! a campaign's `crashes/*.bin`) of the target named, or guessed from the file's name and
//! folder. Each file runs twice, and a different outcome the second time is reported as
//! non-determinism.

use std::io::{self, Write};
use std::path::Path;

use super::signature::quietly;
use crate::target::{run_bytes, TargetName, Verdict};
use crate::trace::{parse, Command, Trace};

/// What one run of a file gave, comparable across runs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Result1 {
    Pass,
    Fail(String),
    Undecodable,
}

/// Reproduces each file; returns how many failed (crashed, were unreadable or undecodable).
pub fn repro_files(
    paths: &[std::path::PathBuf],
    target: Option<TargetName>,
    out: &mut dyn Write,
) -> io::Result<usize> {
    let mut bad = 0;
    for p in paths {
        let data = match std::fs::read(p) {
            Ok(d) => d,
            Err(e) => {
                bad += 1;
                writeln!(out, "ERROR {}: {e}", p.display())?;
                continue;
            }
        };
        let (what, first, second) = match trace_of(&data) {
            Some(trace) => {
                let t = target.or_else(|| attaches(&trace).then_some(TargetName::QemuDiff));
                let what = t.map_or("trace".to_string(), |t| format!("{t} trace"));
                (what, replay(t, &trace), replay(t, &trace))
            }
            None => {
                let t = target.unwrap_or_else(|| guess_target(p));
                (format!("{t} input"), run_raw(t, &data), run_raw(t, &data))
            }
        };
        match (&first, first == second) {
            (_, false) => {
                bad += 1;
                writeln!(
                    out,
                    "NONDETERMINISTIC {} ({what}): first {first:?}, then {second:?}",
                    p.display()
                )?;
            }
            (Result1::Pass, true) => {
                writeln!(out, "PASS {} ({what}): no crash, twice", p.display())?
            }
            (Result1::Undecodable, true) => {
                bad += 1;
                writeln!(
                    out,
                    "UNDECODABLE {} ({what}): too short for an input",
                    p.display()
                )?;
            }
            (Result1::Fail(why), true) => {
                bad += 1;
                writeln!(out, "REPRODUCED {} ({what}), twice:\n{why}", p.display())?;
            }
        }
    }
    Ok(bad)
}

/// The file as a trace, if it is UTF-8 text that parses and holds a command.
pub(super) fn trace_of(data: &[u8]) -> Option<Trace> {
    let text = std::str::from_utf8(data).ok()?;
    parse("file", text).ok().filter(|t| !t.lines.is_empty())
}

/// Whether the trace points QEMU's stream at a domain (so it is meant for QEMU too).
fn attaches(trace: &Trace) -> bool {
    trace
        .lines
        .iter()
        .any(|l| matches!(l.command, Command::Attach { .. }))
}

/// Replays as target `t` judges traces (through QEMU for qemu_diff); without a target,
/// against engine, model and oracles.
fn replay(t: Option<TargetName>, trace: &Trace) -> Result1 {
    let r = quietly(|| match t {
        Some(t) => t.target().replay(trace),
        None => crate::replay("file", trace)
            .map(|_| ())
            .map_err(|f| f.to_string()),
    });
    match r {
        Ok(Ok(())) => Result1::Pass,
        Ok(Err(e)) => Result1::Fail(e),
        Err(panic) => Result1::Fail(format!("panicked: {panic}")),
    }
}

fn run_raw(t: TargetName, data: &[u8]) -> Result1 {
    match run_bytes(t, data) {
        Verdict::Undecodable => Result1::Undecodable,
        Verdict::Pass(_) => Result1::Pass,
        Verdict::Crash(f) => {
            let trace = f
                .trace
                .map(|t| format!("--- trace ---\n{t}"))
                .unwrap_or_default();
            let kind = f
                .kind
                .map(|k| format!("finding: {k}\n"))
                .unwrap_or_default();
            Result1::Fail(format!(
                "signature: {}\n{kind}{}\n{trace}",
                f.signature, f.message
            ))
        }
    }
}

/// A target named in the file's name or a folder above it (`crashes/ioasid-….bin`,
/// `artifacts/prealloc/crash-…`, `corpus/ioasid/…`, `clusterfuzz-testcase-minimized-ioasid-…`);
/// `pagetable` otherwise.
pub fn guess_target(p: &Path) -> TargetName {
    let mut names: Vec<String> = p.iter().map(|c| c.to_string_lossy().to_string()).collect();
    names.reverse();
    for n in names {
        // OSS-Fuzz names testcases `clusterfuzz-testcase-[minimized-]<fuzzer>-<id>`.
        let n = n.strip_prefix("clusterfuzz-testcase-").unwrap_or(&n);
        let n = n.strip_prefix("minimized-").unwrap_or(n);
        // qemu_diff first: its name holds no other target's, but check the longest first.
        for t in [
            TargetName::QemuDiff,
            TargetName::Prealloc,
            TargetName::Ioasid,
            TargetName::Pagetable,
        ] {
            if n.starts_with(t.as_str()) || n == t.as_str() {
                return t;
            }
        }
    }
    TargetName::Pagetable
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_guessed_from_names_and_folders() {
        assert_eq!(
            guess_target(Path::new("r/crashes/ioasid-0123.bin")),
            TargetName::Ioasid
        );
        assert_eq!(
            guess_target(Path::new("fuzz/artifacts/prealloc/crash-1")),
            TargetName::Prealloc
        );
        assert_eq!(
            guess_target(Path::new("corpus/qemu_diff/x")),
            TargetName::QemuDiff
        );
        assert_eq!(
            guess_target(Path::new(
                "/tmp/clusterfuzz-testcase-minimized-prealloc-5712"
            )),
            TargetName::Prealloc
        );
        assert_eq!(
            guess_target(Path::new("/tmp/crash-1")),
            TargetName::Pagetable
        );
    }

    #[test]
    fn traces_replay_and_raw_inputs_run() {
        let mut out = Vec::new();
        let dir = std::env::temp_dir().join(format!("ptfuzz-repro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.trace");
        std::fs::write(
            &good,
            "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\nlookup d0 iova=0x1000 -> none\n",
        )
        .unwrap();
        let wrong = dir.join("wrong.trace");
        std::fs::write(
            &wrong,
            "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\nlookup d0 iova=0x1000 -> pa=0x5\n",
        )
        .unwrap();
        let raw = dir.join("ioasid-input.bin");
        std::fs::write(&raw, [7u8; 64]).unwrap();
        let short = dir.join("short.bin");
        std::fs::write(&short, [0xffu8]).unwrap();
        let bad = repro_files(
            &[good, wrong, raw, short, dir.join("missing")],
            None,
            &mut out,
        )
        .unwrap();
        let out = String::from_utf8(out).unwrap();
        // Arbitrary fills what a short input lacks with zeros: one byte is an input too.
        assert_eq!(bad, 2, "{out}");
        assert!(
            out.contains("PASS") && out.contains("good.trace (trace): no crash, twice"),
            "{out}"
        );
        assert!(
            out.contains("REPRODUCED") && out.contains("wrong.trace"),
            "{out}"
        );
        assert!(out.contains("ioasid-input.bin (ioasid input)"), "{out}");
        assert!(
            out.contains("short.bin (pagetable input): no crash") && out.contains("ERROR"),
            "{out}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
