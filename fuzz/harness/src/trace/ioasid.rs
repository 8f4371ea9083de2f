//! The `ioasid.*` commands of the trace format (docs/IOASID.md, "Trace commands"): same
//! grammar as every other line (a word, `key=value` fields, an optional `-> …` tail), but
//! no leading domain name; `ioasid.bind` names its domain with `dom=`.

use std::collections::HashSet;
use std::fmt;

use ptfuzz_engine::ioasid::Behaviour;

use super::parse::{Args, ParseErrorKind};
use super::print::Hex;

/// One IOASID operation. IDs, sets and ops ids are `u32`, private data `u64`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IoasidCommand {
    /// Register a scripted custom allocator (`ops` names its helpers; the script only
    /// matters for the first registration of those helpers).
    Register {
        ops: u32,
        private: u64,
        script: Vec<Behaviour>,
    },
    Unregister {
        ops: u32,
        private: u64,
    },
    Alloc {
        set: u32,
        min: u32,
        max: u32,
        data: u64,
    },
    Free {
        id: u32,
    },
    /// `getter`: find with a getter that accepts only even data.
    Find {
        id: u32,
        set: Option<u32>,
        getter: bool,
    },
    SetData {
        id: u32,
        data: u64,
    },
    Bind {
        id: u32,
        dom: super::Name,
    },
    Unbind {
        id: u32,
    },
    Translate {
        id: u32,
        iova: u64,
    },
}

/// Every `ioasid.*` word.
pub const WORDS: [&str; 9] = [
    "ioasid.register",
    "ioasid.unregister",
    "ioasid.alloc",
    "ioasid.free",
    "ioasid.find",
    "ioasid.set_data",
    "ioasid.bind",
    "ioasid.unbind",
    "ioasid.translate",
];

/// The name of a behaviour in `script=`.
pub fn behaviour_name(b: Behaviour) -> &'static str {
    match b {
        Behaviour::Fresh => "fresh",
        Behaviour::Duplicate => "dup",
        Behaviour::OutOfRange => "oor",
        Behaviour::Invalid => "invalid",
        Behaviour::Fail => "fail",
    }
}

impl IoasidCommand {
    pub fn word(&self) -> &'static str {
        match self {
            IoasidCommand::Register { .. } => WORDS[0],
            IoasidCommand::Unregister { .. } => WORDS[1],
            IoasidCommand::Alloc { .. } => WORDS[2],
            IoasidCommand::Free { .. } => WORDS[3],
            IoasidCommand::Find { .. } => WORDS[4],
            IoasidCommand::SetData { .. } => WORDS[5],
            IoasidCommand::Bind { .. } => WORDS[6],
            IoasidCommand::Unbind { .. } => WORDS[7],
            IoasidCommand::Translate { .. } => WORDS[8],
        }
    }

    /// The domain a `bind` names ("" for the others).
    pub fn domain(&self) -> &str {
        match self {
            IoasidCommand::Bind { dom, .. } => dom,
            _ => "",
        }
    }
}

fn num32(a: &Args, key: &'static str) -> Result<u32, ParseErrorKind> {
    let v = a.num(key)?;
    u32::try_from(v).map_err(|_| ParseErrorKind::OutOfRange(key, a.opt(key).unwrap_or("").into()))
}

fn script(s: &str) -> Result<Vec<Behaviour>, ParseErrorKind> {
    s.split(',')
        .map(|w| {
            Behaviour::ALL
                .into_iter()
                .find(|b| behaviour_name(*b) == w)
                .ok_or_else(|| ParseErrorKind::BadScript(w.into()))
        })
        .collect()
}

/// Parses the fields of an `ioasid.*` line (`word` is one of [`WORDS`]).
pub(super) fn parse(
    word: &str,
    toks: &[&str],
    declared: &HashSet<String>,
) -> Result<IoasidCommand, ParseErrorKind> {
    Ok(match word {
        "ioasid.register" => {
            let a = Args::new(toks, &["ops", "private"], &["script"])?;
            IoasidCommand::Register {
                ops: num32(&a, "ops")?,
                private: a.num("private")?,
                script: a.opt("script").map(script).transpose()?.unwrap_or_default(),
            }
        }
        "ioasid.unregister" => {
            let a = Args::new(toks, &["ops", "private"], &[])?;
            IoasidCommand::Unregister {
                ops: num32(&a, "ops")?,
                private: a.num("private")?,
            }
        }
        "ioasid.alloc" => {
            let a = Args::new(toks, &["set", "min", "max", "data"], &[])?;
            IoasidCommand::Alloc {
                set: num32(&a, "set")?,
                min: num32(&a, "min")?,
                max: num32(&a, "max")?,
                data: a.num("data")?,
            }
        }
        "ioasid.free" => IoasidCommand::Free {
            id: num32(&Args::new(toks, &["id"], &[])?, "id")?,
        },
        "ioasid.find" => {
            let a = Args::new(toks, &["id"], &["set", "getter"])?;
            let getter = match a.opt("getter") {
                None => false,
                Some("even") => true,
                Some(g) => return Err(ParseErrorKind::BadGetter(g.into())),
            };
            IoasidCommand::Find {
                id: num32(&a, "id")?,
                set: a
                    .opt("set")
                    .is_some()
                    .then(|| num32(&a, "set"))
                    .transpose()?,
                getter,
            }
        }
        "ioasid.set_data" => {
            let a = Args::new(toks, &["id", "data"], &[])?;
            IoasidCommand::SetData {
                id: num32(&a, "id")?,
                data: a.num("data")?,
            }
        }
        "ioasid.bind" => {
            let a = Args::new(toks, &["id", "dom"], &[])?;
            let dom = a.req("dom")?;
            if !declared.contains(dom) {
                return Err(ParseErrorKind::UndeclaredDomain(dom.into()));
            }
            IoasidCommand::Bind {
                id: num32(&a, "id")?,
                dom: dom.to_string().into(),
            }
        }
        "ioasid.unbind" => IoasidCommand::Unbind {
            id: num32(&Args::new(toks, &["id"], &[])?, "id")?,
        },
        _ => {
            let a = Args::new(toks, &["id", "iova"], &[])?;
            IoasidCommand::Translate {
                id: num32(&a, "id")?,
                iova: a.num("iova")?,
            }
        }
    })
}

/// IDs, sets and ops ids in decimal (they are small names), data and addresses in hex.
impl fmt::Display for IoasidCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.word())?;
        match self {
            IoasidCommand::Register {
                ops,
                private,
                script,
            } => {
                write!(f, " ops={ops} private={}", Hex(*private))?;
                if !script.is_empty() {
                    let names: Vec<&str> = script.iter().map(|b| behaviour_name(*b)).collect();
                    write!(f, " script={}", names.join(","))?;
                }
                Ok(())
            }
            IoasidCommand::Unregister { ops, private } => {
                write!(f, " ops={ops} private={}", Hex(*private))
            }
            IoasidCommand::Alloc {
                set,
                min,
                max,
                data,
            } => write!(
                f,
                " set={set} min={} max={} data={}",
                Hex(*min as u64),
                Hex(*max as u64),
                Hex(*data)
            ),
            IoasidCommand::Free { id } | IoasidCommand::Unbind { id } => write!(f, " id={id}"),
            IoasidCommand::Find { id, set, getter } => {
                write!(f, " id={id}")?;
                if let Some(s) = set {
                    write!(f, " set={s}")?;
                }
                if *getter {
                    f.write_str(" getter=even")?;
                }
                Ok(())
            }
            IoasidCommand::SetData { id, data } => write!(f, " id={id} data={}", Hex(*data)),
            IoasidCommand::Bind { id, dom } => write!(f, " id={id} dom={dom}"),
            IoasidCommand::Translate { id, iova } => write!(f, " id={id} iova={}", Hex(*iova)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::trace::{parse, ParseErrorKind};

    const TEXT: &str = "\
domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48
ioasid.register ops=1 private=0x10 script=fresh,dup,oor,invalid,fail
ioasid.register ops=2 private=0
ioasid.alloc set=1 min=0x1 max=0xfffff data=0x5 -> ok id=1
ioasid.find id=1 set=1 getter=even -> err=inval
ioasid.find id=1 -> data=0x5
ioasid.set_data id=1 data=7
ioasid.bind id=1 dom=d0 -> ok
ioasid.translate id=1 iova=0x1000 -> none
ioasid.free id=1 -> err=busy
ioasid.unbind id=1
ioasid.unregister ops=1 private=0x10 -> err=busy
";

    #[test]
    fn round_trip() {
        let t = parse("t", TEXT).unwrap();
        assert_eq!(t.lines.len(), 12);
        let printed = t.to_string();
        assert_eq!(
            printed.trim_end(),
            TEXT.trim_end().replace("data=7", "data=0x7")
        );
        assert_eq!(parse("p", &printed).unwrap().to_string(), printed);
    }

    #[test]
    fn errors_name_line_and_problem() {
        let cases: &[(&str, ParseErrorKind, &str)] = &[
            (
                "ioasid.register ops=1 private=0 script=fresh,maybe",
                ParseErrorKind::BadScript("maybe".into()),
                "t:2: ioasid.register: unknown allocator behaviour 'maybe' (fresh dup oor invalid fail)",
            ),
            (
                "ioasid.alloc set=1 min=0 max=0x100000000 data=0",
                ParseErrorKind::OutOfRange("max", "0x100000000".into()),
                "t:2: ioasid.alloc: max=0x100000000 out of range",
            ),
            (
                "ioasid.alloc set=1 min=0 max=9",
                ParseErrorKind::MissingKey("data"),
                "t:2: ioasid.alloc: missing key data",
            ),
            (
                "ioasid.bind id=1 dom=d7",
                ParseErrorKind::UndeclaredDomain("d7".into()),
                "t:2: ioasid.bind: domain d7 not declared",
            ),
            (
                "ioasid.find id=1 getter=odd",
                ParseErrorKind::BadGetter("odd".into()),
                "t:2: ioasid.find: getter must be even, not 'odd'",
            ),
            (
                "ioasid.free d0 id=1",
                ParseErrorKind::NotKeyValue("d0".into()),
                "t:2: ioasid.free: expected key=value, got 'd0'",
            ),
            (
                "ioasid.free id=1 -> data=1",
                ParseErrorKind::FieldNotApplicable("data"),
                "t:2: ioasid.free: expectation field data does not apply to this command",
            ),
            (
                "ioasid.find id=1 -> id=1",
                ParseErrorKind::FieldNotApplicable("id"),
                "t:2: ioasid.find: expectation field id does not apply to this command",
            ),
            (
                "ioasid.translate id=1 iova=0 -> mapped=0",
                ParseErrorKind::FieldNotApplicable("mapped"),
                "t:2: ioasid.translate: expectation field mapped does not apply to this command",
            ),
            (
                "ioasid.frob id=1",
                ParseErrorKind::UnknownCommand("ioasid.frob".into()),
                "t:2: unknown command 'ioasid.frob'",
            ),
        ];
        for (line, kind, msg) in cases {
            let e = parse(
                "t",
                &format!("domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n{line}\n"),
            )
            .unwrap_err();
            assert_eq!(
                (&e.kind, e.line, e.to_string().as_str()),
                (kind, 2, *msg),
                "{line}"
            );
        }
    }
}
