//! [`Trace`] → text, the inverse of [`parse`](super::parse). Addresses and byte counts are
//! printed in hex (they are read against descriptor dumps), `count`, `ias` and `oas` in
//! decimal; `coherent`, `base`, `concat` and `hostpage` only when they differ from the
//! defaults (`hostpage` whenever it was set).

use std::fmt;

use ptfuzz_engine::{Concat, DEFAULT_PHYS_BASE};

use super::{Command, Expect, IoValue, Trace, TraceLine};

/// A number in the trace's hex style; zero as plain `0` (`mapped=0` reads as DESIGN.md's).
pub struct Hex(pub u64);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("0"),
            v => write!(f, "{v:#x}"),
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Domain {
                name,
                cfg,
                custom_alloc,
            } => {
                write!(
                    f,
                    "domain {name} fmt={} granule={} ias={} oas={}",
                    cfg.format, cfg.granule, cfg.ias, cfg.oas
                )?;
                if cfg.concat != Concat::Required {
                    write!(f, " concat={}", cfg.concat)?;
                }
                if let Some(page) = cfg.host_page {
                    write!(f, " hostpage={page}")?;
                }
                if !cfg.coherent {
                    f.write_str(" coherent=no")?;
                }
                if cfg.phys_base != DEFAULT_PHYS_BASE {
                    write!(f, " base={}", Hex(cfg.phys_base))?;
                }
                if *custom_alloc {
                    f.write_str(" alloc=custom")?;
                }
                Ok(())
            }
            Command::Map {
                dom,
                iova,
                pa,
                pgsize,
                count,
                prot,
            } => write!(
                f,
                "map {dom} iova={} pa={} pgsize={} count={count} prot={prot}",
                Hex(*iova),
                Hex(*pa),
                Hex(*pgsize)
            ),
            Command::Unmap {
                dom,
                iova,
                pgsize,
                count,
            } => {
                write!(
                    f,
                    "unmap {dom} iova={} pgsize={} count={count}",
                    Hex(*iova),
                    Hex(*pgsize)
                )
            }
            Command::Lookup { dom, iova } => write!(f, "lookup {dom} iova={}", Hex(*iova)),
            Command::FailNth { dom, n } => write!(f, "fail_nth {dom} n={n}"),
            Command::Attach { dom, nest: None } => write!(f, "attach {dom}"),
            Command::Attach { dom, nest: Some(n) } => write!(f, "attach {dom} nest={n}"),
            Command::JobPrepare {
                dom,
                job,
                iova,
                size,
            } => {
                write!(
                    f,
                    "job.prepare {dom} job={job} iova={} size={}",
                    Hex(*iova),
                    Hex(*size)
                )
            }
            Command::JobRun {
                dom,
                job,
                iova,
                pa,
                pgsize,
                count,
                prot,
            } => write!(
                f,
                "job.run {dom} job={job} iova={} pa={} pgsize={} count={count} prot={prot}",
                Hex(*iova),
                Hex(*pa),
                Hex(*pgsize)
            ),
            Command::JobCleanup { dom, job } => write!(f, "job.cleanup {dom} job={job}"),
            Command::Reserve { dom, iova, size } | Command::Unreserve { dom, iova, size } => {
                write!(
                    f,
                    "{} {dom} iova={} size={}",
                    self.word(),
                    Hex(*iova),
                    Hex(*size)
                )
            }
            Command::Grace { dom } | Command::Clear { dom } | Command::Sync { dom } => {
                write!(f, "{} {dom}", self.word())
            }
            Command::Ioasid(c) => c.fmt(f),
        }
    }
}

/// The tail after `->`, fields in a fixed order.
impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut fields = Vec::new();
        if self.ok {
            fields.push("ok".to_string());
        }
        if let Some(k) = self.err {
            fields.push(format!("err={k}"));
        }
        for (name, v) in [
            ("mapped", self.mapped),
            ("unmapped", self.unmapped),
            ("pa", self.pa),
        ] {
            if let Some(v) = v {
                fields.push(format!("{name}={}", Hex(v)));
            }
        }
        match self.io {
            Some(IoValue::Id(id)) => fields.push(format!("id={id}")),
            Some(IoValue::Data(d)) => fields.push(format!("data={}", Hex(d))),
            None => {}
        }
        // Page and table counts read as counts: decimal.
        for (name, v) in [
            ("pages", self.pages),
            ("returned", self.returned),
            ("freed", self.freed),
        ] {
            if let Some(v) = v {
                fields.push(format!("{name}={v}"));
            }
        }
        if self.none {
            fields.push("none".to_string());
        }
        f.write_str(&fields.join(" "))
    }
}

impl fmt::Display for TraceLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.command)?;
        match &self.expect {
            Some(e) if !e.is_empty() => write!(f, " -> {e}"),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.lines.iter().try_for_each(|l| writeln!(f, "{l}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::trace::parse;

    const TEXT: &str = "\
# header comment
domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48
domain d1 fmt=arm64-s2 granule=64K ias=40 oas=44 concat=max coherent=no base=0x80000000  # trailing

map d0 iova=0x200000 pa=0x40200000 pgsize=2m count=1 prot=rw -> ok mapped=0x200000
map d1 prot=- count=3 pgsize=64k pa=1g iova=0x10k -> err=inval mapped=0
map d0 iova=0 pa=0 pgsize=4k count=1 prot=rwxcmp
unmap d0 iova=0x200000 pgsize=2M count=1 -> unmapped=0x200000
lookup d0 iova=0x201234 -> pa=0x40201234
lookup d1 iova=0 -> none
";

    /// print → parse gives the same trace, and printing is a fixed point.
    #[test]
    fn round_trip() {
        let t = parse("t", TEXT).unwrap();
        assert_eq!(t.lines.len(), 8);
        let printed = t.to_string();
        let again = parse("printed", &printed).unwrap();
        let strip = |t: &crate::trace::Trace| {
            t.lines
                .iter()
                .map(|l| (l.command.clone(), l.expect))
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(&t), strip(&again));
        assert_eq!(printed, again.to_string());
        assert!(printed.contains(
            "domain d1 fmt=arm64-s2 granule=64k ias=40 oas=44 concat=max coherent=no base=0x80000000\n"
        ));
        assert!(printed.contains("map d1 iova=0x4000 pa=0x40000000 pgsize=0x10000 count=3 prot=- -> err=inval mapped=0\n"));
    }
}
