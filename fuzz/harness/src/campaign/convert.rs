//! `ptfuzz convert`: raw fuzzer input ↔ readable trace. Raw bytes of any target become the
//! trace they run (`NAME.trace`); a trace becomes raw bytes (`NAME.bin`) for the targets
//! whose op language can say it (`crate::target::Target::encode`), else the error names
//! the line it cannot say. Which way is decided by the file: a trace is text that parses.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::repro::{guess_target, trace_of};
use crate::target::{Stop, TargetName};
use crate::trace::Trace;

/// What one file converts into.
#[derive(Debug, PartialEq, Eq)]
pub enum Converted {
    /// The trace raw bytes ran, as text; with the failure when they crashed (the trace then
    /// ends at the failing line).
    Trace {
        text: String,
        failure: Option<String>,
    },
    /// Raw bytes of the target that run the trace's commands.
    Raw(Vec<u8>),
}

/// Converts one file's contents for target `t`.
pub fn convert(t: TargetName, data: &[u8]) -> Result<Converted, String> {
    if let Some(trace) = trace_of(data) {
        return t
            .target()
            .encode(&trace)
            .map(Converted::Raw)
            .map_err(|e| e.to_string());
    }
    let (_, ran) = t
        .target()
        .trace_bytes(data)
        .ok_or_else(|| format!("does not decode into an input of {t}"))?;
    let (trace, failure) = match ran {
        Ok(Ok(trace)) => (trace, None),
        Ok(Err(Stop::Crash(c))) => {
            let why = format!("op {}: {}", c.op, c.kind);
            (c.trace, Some(why))
        }
        Ok(Err(Stop::Unjudged(why))) => return Err(format!("not judged: {why}")),
        Err(panic) => return Err(format!("panicked, no trace: {panic}")),
    };
    Ok(Converted::Trace {
        text: trace_text(&trace, failure.as_deref()),
        failure,
    })
}

fn trace_text(trace: &Trace, failure: Option<&str>) -> String {
    match failure {
        None => trace.to_string(),
        Some(f) => format!("{trace}# FAIL at {}\n", f.replace('\n', " ")),
    }
}

/// Converts every file; the output goes beside it (or into `out_dir`) as `NAME.trace` or
/// `NAME.bin`. One line per file; returns how many could not be converted.
pub fn convert_files(
    target: Option<TargetName>,
    paths: &[PathBuf],
    out_dir: Option<&Path>,
    out: &mut dyn Write,
) -> io::Result<usize> {
    let mut bad = 0;
    for p in paths {
        let t = target.unwrap_or_else(|| guess_target(p));
        let converted = std::fs::read(p)
            .map_err(|e| e.to_string())
            .and_then(|data| convert(t, &data));
        let (ext, bytes, note) = match converted {
            Ok(Converted::Raw(b)) => ("bin", b, String::new()),
            Ok(Converted::Trace { text, failure }) => (
                "trace",
                text.into_bytes(),
                failure
                    .map(|f| format!(" (crashes: {f})"))
                    .unwrap_or_default(),
            ),
            Err(e) => {
                bad += 1;
                writeln!(out, "ERROR {} ({t}): {e}", p.display())?;
                continue;
            }
        };
        let stem = p.file_stem().unwrap_or(p.as_os_str());
        let dir = out_dir.unwrap_or_else(|| p.parent().unwrap_or(Path::new(".")));
        std::fs::create_dir_all(dir)?;
        let mut dst = dir.join(stem);
        dst.set_extension(ext);
        if dst == *p {
            dst.set_extension(format!("{ext}.{ext}"));
        }
        std::fs::write(&dst, bytes)?;
        writeln!(out, "{} ({t}) -> {}{note}", p.display(), dst.display())?;
    }
    Ok(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::parse;

    fn raw_to_trace(t: TargetName, data: &[u8]) -> String {
        match convert(t, data).unwrap() {
            Converted::Trace {
                text,
                failure: None,
            } => text,
            other => panic!("{other:?}"),
        }
    }

    /// raw → trace → raw → trace gives the same trace, for every page-table seed.
    #[test]
    fn pagetable_seeds_round_trip() {
        let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../corpus/pagetable");
        let mut n = 0;
        for e in std::fs::read_dir(&seeds).unwrap().flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let first = raw_to_trace(TargetName::Pagetable, &data);
            let Converted::Raw(raw) = convert(TargetName::Pagetable, first.as_bytes())
                .unwrap_or_else(|err| panic!("{}: {err}\n{first}", e.path().display()))
            else {
                panic!("a trace converts into raw bytes")
            };
            let second = raw_to_trace(TargetName::Pagetable, &raw);
            assert_eq!(first, second, "{}", e.path().display());
            n += 1;
        }
        assert!(n >= 10, "{n} seeds under {}", seeds.display());
    }

    #[test]
    fn what_the_op_language_cannot_say_is_named_by_line() {
        let t = TargetName::Pagetable;
        let err = |text: &str| match convert(t, text.as_bytes()) {
            Err(e) => e,
            Ok(c) => panic!("{c:?}"),
        };
        let dom = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n";
        let e = err(&format!("{dom}sync d0\nreserve d0 iova=0x0 size=0x1000\n"));
        assert!(e.starts_with("line 3: reserve:"), "{e}");
        let e = err(&format!("{dom}fail_nth d0 n=9\n"));
        assert!(e.starts_with("line 2: fail_nth: n=9"), "{e}");
        // More pages than one op may map: the language caps the count.
        let e = err(&format!(
            "{dom}map d0 iova=0x0 pa=0x0 pgsize=4k count=5000 prot=rw\n"
        ));
        assert!(
            e.starts_with("line 2: map: the op language cannot say it"),
            "{e}"
        );
        let e = err("domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48 base=0x12340000\n");
        assert!(e.contains("line 1: domain: no configuration bytes"), "{e}");
        let e = err("domain d7 fmt=arm64-s1 granule=4k ias=48 oas=48\n");
        assert!(e.contains("line 1: domain"), "{e}");
        for other in [TargetName::Ioasid, TargetName::Prealloc] {
            let e = convert(other, dom.as_bytes()).unwrap_err();
            assert!(e.contains("do not encode"), "{e}");
        }
    }

    /// A hand-written trace (every command, a stage-2 domain in a tight window, custom
    /// allocator hooks) encodes into bytes whose trace has exactly its commands.
    #[test]
    fn a_written_trace_encodes_to_its_commands() {
        let text = "domain d0 fmt=arm64-s2 granule=16k ias=40 oas=44 coherent=no alloc=custom\n\
                    map d0 iova=0x2000000 pa=0x40000000 pgsize=32m count=2 prot=rwx\n\
                    map d0 iova=0x0 pa=0x4000 pgsize=16k count=3 prot=p\n\
                    lookup d0 iova=0x2001234\n\
                    unmap d0 iova=0x2000000 pgsize=16k count=1\n\
                    fail_nth d0 n=2\nsync d0\ngrace d0\nclear d0\n";
        let want = parse("w", text).unwrap();
        let Converted::Raw(raw) = convert(TargetName::Pagetable, text.as_bytes()).unwrap() else {
            panic!()
        };
        let got = parse("g", &raw_to_trace(TargetName::Pagetable, &raw)).unwrap();
        let cmds = |t: &Trace| {
            t.lines
                .iter()
                .map(|l| l.command.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(cmds(&got), cmds(&want));
    }

    #[test]
    fn files_convert_beside_themselves() {
        let dir = std::env::temp_dir().join(format!("ptfuzz-convert-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let raw = dir.join("crash-1");
        std::fs::write(&raw, [3u8; 40]).unwrap();
        let mut out = Vec::new();
        let bad = convert_files(None, &[raw.clone(), dir.join("missing")], None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(bad, 1, "{text}");
        let trace = std::fs::read_to_string(dir.join("crash-1.trace")).unwrap();
        assert!(trace.starts_with("domain d0"), "{trace}");
        let bad = convert_files(None, &[dir.join("crash-1.trace")], None, &mut Vec::new()).unwrap();
        assert_eq!(bad, 0);
        let back = std::fs::read(dir.join("crash-1.bin")).unwrap();
        assert_eq!(raw_to_trace(TargetName::Pagetable, &back), trace);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
