//! Text → [`Trace`]. Strict: every required key exactly once, no unknown keys, every domain
//! declared before use, so a typo in a hand-written regression fails loudly instead of
//! silently testing something else.

use std::collections::HashSet;

use ptfuzz_engine::{
    Concat, DomainConfig, ErrorKind, FormatKind, Granule, Prot, DEFAULT_PHYS_BASE,
};

use super::{Command, Expect, IoValue, IoasidCommand, Trace, TraceLine};

/// A parse error, naming the file, the 1-based line and (if known) the command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {}{kind}", cmd.map(|c| format!("{c}: ")).unwrap_or_default())]
pub struct ParseError {
    pub file: String,
    pub line: usize,
    pub cmd: Option<&'static str>,
    pub kind: ParseErrorKind,
}

/// What is wrong with a line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    #[error("missing domain name")]
    MissingName,
    #[error("bad domain name '{0}'")]
    BadName(String),
    #[error("expected key=value, got '{0}'")]
    NotKeyValue(String),
    #[error("unknown key {0}")]
    UnknownKey(String),
    #[error("duplicate key {0}")]
    DuplicateKey(String),
    #[error("missing key {0}")]
    MissingKey(&'static str),
    #[error("bad number '{0}'")]
    BadNumber(String),
    #[error("{0}={1} out of range")]
    OutOfRange(&'static str, String),
    #[error("unknown prot letter '{0}'")]
    BadProt(char),
    #[error("unknown format '{0}'")]
    UnknownFormat(String),
    #[error("granule must be 4k, 16k or 64k, not '{0}'")]
    BadGranule(String),
    #[error("hostpage must be 4k, 16k or 64k, not '{0}'")]
    BadHostPage(String),
    #[error("coherent must be yes or no, not '{0}'")]
    BadCoherent(String),
    #[error("concat must be required or max, not '{0}'")]
    BadConcat(String),
    #[error("alloc must be default or custom, not '{0}'")]
    BadAlloc(String),
    #[error("domain {0} not declared")]
    UndeclaredDomain(String),
    #[error("domain {0} already declared")]
    DuplicateDomain(String),
    #[error("empty expectation after '->'")]
    EmptyExpect,
    #[error("unknown expectation field '{0}'")]
    UnknownField(String),
    #[error("duplicate expectation field {0}")]
    DuplicateField(String),
    #[error("unknown error kind '{0}'")]
    UnknownErrorKind(String),
    #[error("expectation field {0} does not apply to this command")]
    FieldNotApplicable(&'static str),
    #[error("contradictory expectation: {0} and {1}")]
    Contradiction(&'static str, &'static str),
    #[error("unknown allocator behaviour '{0}' (fresh dup oor invalid fail)")]
    BadScript(String),
    #[error("getter must be even, not '{0}'")]
    BadGetter(String),
}

type Res<T> = Result<T, ParseErrorKind>;

/// Parses a whole trace; `file` only labels errors.
pub fn parse(file: &str, text: &str) -> Result<Trace, ParseError> {
    let mut declared = HashSet::new();
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = raw.split('#').next().unwrap_or("").trim();
        if body.is_empty() {
            continue;
        }
        let err = |cmd, kind| ParseError {
            file: file.to_string(),
            line: i + 1,
            cmd,
            kind,
        };
        let (cmd_text, tail) = match body.split_once("->") {
            Some((c, t)) => (c, Some(t)),
            None => (body, None),
        };
        let mut toks = cmd_text.split_whitespace();
        let word = toks
            .next()
            .ok_or_else(|| err(None, ParseErrorKind::UnknownCommand("->".into())))?;
        let word: &'static str = match word {
            "domain" => "domain",
            "map" => "map",
            "unmap" => "unmap",
            "lookup" => "lookup",
            "grace" => "grace",
            "fail_nth" => "fail_nth",
            "clear" => "clear",
            "sync" => "sync",
            "attach" => "attach",
            "job.prepare" => "job.prepare",
            "job.run" => "job.run",
            "job.cleanup" => "job.cleanup",
            "reserve" => "reserve",
            "unreserve" => "unreserve",
            w => match super::ioasid::WORDS.iter().find(|x| **x == w) {
                Some(x) => x,
                None => return Err(err(None, ParseErrorKind::UnknownCommand(w.into()))),
            },
        };
        let toks: Vec<&str> = toks.collect();
        let command = if word.starts_with("ioasid.") {
            super::ioasid::parse(word, &toks, &declared).map(Command::Ioasid)
        } else {
            parse_command(word, &toks, &mut declared)
        };
        let parsed = command.and_then(|command| {
            let expect = tail.map(|t| parse_expect(&command, t)).transpose()?;
            Ok(TraceLine {
                line: i + 1,
                command,
                expect,
            })
        });
        lines.push(parsed.map_err(|k| err(Some(word), k))?);
    }
    Ok(Trace { lines })
}

fn parse_command(word: &str, toks: &[&str], declared: &mut HashSet<String>) -> Res<Command> {
    let (name, rest) = toks.split_first().ok_or(ParseErrorKind::MissingName)?;
    if name.contains('=') {
        return Err(ParseErrorKind::MissingName);
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
    {
        return Err(ParseErrorKind::BadName(name.to_string()));
    }
    let dom = name.to_string();
    if word == "domain" {
        if !declared.insert(dom.clone()) {
            return Err(ParseErrorKind::DuplicateDomain(dom));
        }
    } else if !declared.contains(&dom) {
        return Err(ParseErrorKind::UndeclaredDomain(dom));
    }
    let dom = super::Name::from(dom);
    Ok(match word {
        "domain" => {
            let a = Args::new(
                rest,
                &["fmt", "granule", "ias", "oas"],
                &["coherent", "base", "alloc", "concat", "hostpage"],
            )?;
            let fmt = a.req("fmt")?;
            let format = FormatKind::from_name(fmt)
                .ok_or_else(|| ParseErrorKind::UnknownFormat(fmt.into()))?;
            let g = a.req("granule")?;
            let granule = parse_number(g)
                .and_then(Granule::from_size)
                .ok_or_else(|| ParseErrorKind::BadGranule(g.into()))?;
            let mut cfg = DomainConfig::new(format, granule, a.bits("ias")?, a.bits("oas")?);
            cfg.coherent = match a.opt("coherent") {
                None | Some("yes") => true,
                Some("no") => false,
                Some(v) => return Err(ParseErrorKind::BadCoherent(v.into())),
            };
            cfg.phys_base = a
                .opt("base")
                .map(num)
                .transpose()?
                .unwrap_or(DEFAULT_PHYS_BASE);
            if let Some(v) = a.opt("hostpage") {
                let page = parse_number(v)
                    .and_then(Granule::from_size)
                    .ok_or_else(|| ParseErrorKind::BadHostPage(v.into()))?;
                cfg.host_page = Some(page);
            }
            if let Some(v) = a.opt("concat") {
                cfg.concat =
                    Concat::from_name(v).ok_or_else(|| ParseErrorKind::BadConcat(v.into()))?;
            }
            let custom_alloc = match a.opt("alloc") {
                None | Some("default") => false,
                Some("custom") => true,
                Some(v) => return Err(ParseErrorKind::BadAlloc(v.into())),
            };
            Command::Domain {
                name: dom,
                cfg,
                custom_alloc,
            }
        }
        "map" => {
            let a = Args::new(rest, &["iova", "pa", "pgsize", "count", "prot"], &[])?;
            let p = a.req("prot")?;
            let prot = Prot::parse(p).ok_or_else(|| {
                let bad = p.chars().find(|c| !"rwxcmp".contains(*c)).unwrap_or('-');
                ParseErrorKind::BadProt(bad)
            })?;
            Command::Map {
                dom,
                iova: a.num("iova")?,
                pa: a.num("pa")?,
                pgsize: a.num("pgsize")?,
                count: a.num("count")?,
                prot,
            }
        }
        "unmap" => {
            let a = Args::new(rest, &["iova", "pgsize", "count"], &[])?;
            Command::Unmap {
                dom,
                iova: a.num("iova")?,
                pgsize: a.num("pgsize")?,
                count: a.num("count")?,
            }
        }
        "lookup" => {
            let a = Args::new(rest, &["iova"], &[])?;
            Command::Lookup {
                dom,
                iova: a.num("iova")?,
            }
        }
        "attach" => {
            let a = Args::new(rest, &[], &["nest"])?;
            let nest = a.opt("nest").map(str::to_string);
            if let Some(n) = &nest {
                if !declared.contains(n) {
                    return Err(ParseErrorKind::UndeclaredDomain(n.clone()));
                }
            }
            Command::Attach {
                dom,
                nest: nest.map(super::Name::from),
            }
        }
        "job.prepare" => {
            let a = Args::new(rest, &["job", "iova", "size"], &[])?;
            Command::JobPrepare {
                dom,
                job: a.job()?,
                iova: a.num("iova")?,
                size: a.num("size")?,
            }
        }
        "job.run" => {
            let a = Args::new(rest, &["job", "iova", "pa", "pgsize", "count", "prot"], &[])?;
            let p = a.req("prot")?;
            let prot = Prot::parse(p).ok_or_else(|| {
                let bad = p.chars().find(|c| !"rwxcmp".contains(*c)).unwrap_or('-');
                ParseErrorKind::BadProt(bad)
            })?;
            Command::JobRun {
                dom,
                job: a.job()?,
                iova: a.num("iova")?,
                pa: a.num("pa")?,
                pgsize: a.num("pgsize")?,
                count: a.num("count")?,
                prot,
            }
        }
        "job.cleanup" => Command::JobCleanup {
            job: Args::new(rest, &["job"], &[])?.job()?,
            dom,
        },
        "reserve" | "unreserve" => {
            let a = Args::new(rest, &["iova", "size"], &[])?;
            let (iova, size) = (a.num("iova")?, a.num("size")?);
            if word == "reserve" {
                Command::Reserve { dom, iova, size }
            } else {
                Command::Unreserve { dom, iova, size }
            }
        }
        "fail_nth" => Command::FailNth {
            n: Args::new(rest, &["n"], &[])?.num("n")?,
            dom,
        },
        w => {
            Args::new(rest, &[], &[])?;
            match w {
                "grace" => Command::Grace { dom },
                "clear" => Command::Clear { dom },
                _ => Command::Sync { dom },
            }
        }
    })
}

/// The `key=value` arguments of one line, validated against the keys the command takes.
pub(super) struct Args<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Args<'a> {
    pub(super) fn new(toks: &[&'a str], required: &[&'static str], optional: &[&str]) -> Res<Self> {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for t in toks {
            let (k, v) = t
                .split_once('=')
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| ParseErrorKind::NotKeyValue(t.to_string()))?;
            if !required.contains(&k) && !optional.contains(&k) {
                return Err(ParseErrorKind::UnknownKey(k.into()));
            }
            if pairs.iter().any(|(pk, _)| *pk == k) {
                return Err(ParseErrorKind::DuplicateKey(k.into()));
            }
            pairs.push((k, v));
        }
        if let Some(missing) = required
            .iter()
            .find(|r| !pairs.iter().any(|(k, _)| k == *r))
        {
            return Err(ParseErrorKind::MissingKey(missing));
        }
        Ok(Args(pairs))
    }

    pub(super) fn opt(&self, key: &str) -> Option<&'a str> {
        self.0.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    pub(super) fn req(&self, key: &'static str) -> Res<&'a str> {
        self.opt(key).ok_or(ParseErrorKind::MissingKey(key))
    }

    pub(super) fn num(&self, key: &'static str) -> Res<u64> {
        num(self.req(key)?)
    }

    /// A job id (32 bits).
    fn job(&self) -> Res<u32> {
        let v = self.req("job")?;
        u32::try_from(num(v)?).map_err(|_| ParseErrorKind::OutOfRange("job", v.into()))
    }

    /// An address-size field (IAS/OAS, in bits).
    fn bits(&self, key: &'static str) -> Res<u32> {
        let v = self.req(key)?;
        u32::try_from(num(v)?).map_err(|_| ParseErrorKind::OutOfRange(key, v.into()))
    }
}

fn num(s: &str) -> Res<u64> {
    parse_number(s).ok_or_else(|| ParseErrorKind::BadNumber(s.into()))
}

/// Parses `0x…` hex or decimal, with an optional `k`/`m`/`g` (×2^10/2^20/2^30) suffix,
/// case-insensitive: `4k`, `2M`, `1g`, `0x10`, `0x10k`. `None` if malformed or > u64.
pub fn parse_number(s: &str) -> Option<u64> {
    let s = s.to_ascii_lowercase();
    let (digits, shift) = match s.as_bytes().last()? {
        b'k' => (&s[..s.len() - 1], 10),
        b'm' => (&s[..s.len() - 1], 20),
        b'g' => (&s[..s.len() - 1], 30),
        _ => (&s[..], 0),
    };
    let v = match digits.strip_prefix("0x") {
        Some(h) if !h.is_empty() && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
            u64::from_str_radix(h, 16).ok()?
        }
        None if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok()?
        }
        _ => return None,
    };
    v.checked_mul(1 << shift)
}

/// Parses the tail after `->`. Fields that can never describe this command's result
/// (`pa=` on a map, …) are rejected, since they could only be typos.
fn parse_expect(cmd: &Command, tail: &str) -> Res<Expect> {
    let mut e = Expect::default();
    let mut seen: Vec<&str> = Vec::new();
    let is_translate = matches!(cmd, Command::Ioasid(IoasidCommand::Translate { .. }));
    for tok in tail.split_whitespace() {
        let (key, val) = match tok.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (tok, None),
        };
        let (field, applies): (&'static str, bool) = match key {
            "ok" => ("ok", true),
            "err" => ("err", true),
            "mapped" => (
                "mapped",
                matches!(cmd, Command::Map { .. } | Command::JobRun { .. }),
            ),
            "pages" => (
                "pages",
                matches!(cmd, Command::JobPrepare { .. } | Command::Reserve { .. }),
            ),
            "returned" => ("returned", matches!(cmd, Command::JobCleanup { .. })),
            "freed" => ("freed", matches!(cmd, Command::Unreserve { .. })),
            "unmapped" => ("unmapped", matches!(cmd, Command::Unmap { .. })),
            "pa" => ("pa", matches!(cmd, Command::Lookup { .. }) || is_translate),
            "none" => (
                "none",
                matches!(cmd, Command::Lookup { .. }) || is_translate,
            ),
            "id" => (
                "id",
                matches!(cmd, Command::Ioasid(IoasidCommand::Alloc { .. })),
            ),
            "data" => (
                "data",
                matches!(cmd, Command::Ioasid(IoasidCommand::Find { .. })),
            ),
            _ => return Err(ParseErrorKind::UnknownField(tok.into())),
        };
        let is_flag = matches!(field, "ok" | "none");
        if is_flag != val.is_none() {
            return Err(ParseErrorKind::UnknownField(tok.into()));
        }
        if !applies {
            return Err(ParseErrorKind::FieldNotApplicable(field));
        }
        if seen.contains(&field) {
            return Err(ParseErrorKind::DuplicateField(field.into()));
        }
        seen.push(field);
        let val = val.unwrap_or("");
        match field {
            "ok" => e.ok = true,
            "none" => e.none = true,
            "err" => {
                e.err = Some(
                    ErrorKind::from_name(val)
                        .ok_or_else(|| ParseErrorKind::UnknownErrorKind(val.into()))?,
                )
            }
            "mapped" => e.mapped = Some(num(val)?),
            "unmapped" => e.unmapped = Some(num(val)?),
            "id" => {
                let id = u32::try_from(num(val)?)
                    .map_err(|_| ParseErrorKind::OutOfRange("id", val.into()))?;
                e.io = Some(IoValue::Id(id))
            }
            "data" => e.io = Some(IoValue::Data(num(val)?)),
            "pages" => e.pages = Some(num(val)?),
            "returned" => e.returned = Some(num(val)?),
            "freed" => e.freed = Some(num(val)?),
            _ => e.pa = Some(num(val)?),
        }
    }
    if e.is_empty() {
        return Err(ParseErrorKind::EmptyExpect);
    }
    if e.ok && e.err.is_some() {
        return Err(ParseErrorKind::Contradiction("ok", "err"));
    }
    if e.none && e.pa.is_some() {
        return Err(ParseErrorKind::Contradiction("pa", "none"));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for (s, v) in [
            ("0", 0),
            ("4k", 4096),
            ("4K", 4096),
            ("2m", 2 << 20),
            ("1G", 1 << 30),
            ("0x10", 16),
            ("0X1f", 31),
            ("0x10k", 16 << 10),
            ("512m", 512 << 20),
        ] {
            assert_eq!(parse_number(s), Some(v), "{s}");
        }
        for s in [
            "",
            "k",
            "0x",
            "0xzz",
            "+5",
            "-1",
            "1t",
            "18446744073709551616",
            "0x1_0",
            "17179869184g",
        ] {
            assert_eq!(parse_number(s), None, "{s}");
        }
    }

    #[test]
    fn errors_name_line_and_problem() {
        let d = "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n";
        let cases: &[(&str, ParseErrorKind, &str)] = &[
            (
                "map d0 iova=0 pa=0 pgsize=4k count=1 prot=rz",
                ParseErrorKind::BadProt('z'),
                "t:2: map: unknown prot letter 'z'",
            ),
            (
                "map d0 iova=0 pa=0 count=1 prot=r",
                ParseErrorKind::MissingKey("pgsize"),
                "t:2: map: missing key pgsize",
            ),
            (
                "lookup d1 iova=0",
                ParseErrorKind::UndeclaredDomain("d1".into()),
                "t:2: lookup: domain d1 not declared",
            ),
            (
                "lookup d0 iova=0xzz",
                ParseErrorKind::BadNumber("0xzz".into()),
                "t:2: lookup: bad number '0xzz'",
            ),
            (
                "lookup d0 iova=0 iova=1",
                ParseErrorKind::DuplicateKey("iova".into()),
                "t:2: lookup: duplicate key iova",
            ),
            (
                "lookup d0 iova=0 size=1",
                ParseErrorKind::UnknownKey("size".into()),
                "t:2: lookup: unknown key size",
            ),
            (
                "lookup d0 iova=0 -> mapped=0",
                ParseErrorKind::FieldNotApplicable("mapped"),
                "t:2: lookup: expectation field mapped does not apply to this command",
            ),
            (
                "unmap d0 iova=0 pgsize=4k count=1 -> ok err=inval",
                ParseErrorKind::Contradiction("ok", "err"),
                "t:2: unmap: contradictory expectation: ok and err",
            ),
            (
                "unmap d0 iova=0 pgsize=4k count=1 -> err=oops",
                ParseErrorKind::UnknownErrorKind("oops".into()),
                "t:2: unmap: unknown error kind 'oops'",
            ),
            (
                "unmap d0 iova=0 pgsize=4k count=1 ->",
                ParseErrorKind::EmptyExpect,
                "t:2: unmap: empty expectation after '->'",
            ),
            (
                "frob d0",
                ParseErrorKind::UnknownCommand("frob".into()),
                "t:2: unknown command 'frob'",
            ),
            (
                "domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48",
                ParseErrorKind::DuplicateDomain("d0".into()),
                "t:2: domain: domain d0 already declared",
            ),
            (
                "domain d2 fmt=x86 granule=4k ias=48 oas=48",
                ParseErrorKind::UnknownFormat("x86".into()),
                "t:2: domain: unknown format 'x86'",
            ),
            (
                "domain d2 fmt=arm64-s1 granule=8k ias=48 oas=48",
                ParseErrorKind::BadGranule("8k".into()),
                "t:2: domain: granule must be 4k, 16k or 64k, not '8k'",
            ),
            (
                "domain d2 fmt=arm64-s1 granule=4k ias=48 oas=48 coherent=maybe",
                ParseErrorKind::BadCoherent("maybe".into()),
                "t:2: domain: coherent must be yes or no, not 'maybe'",
            ),
            (
                "domain d2 fmt=arm64-s2 granule=4k ias=40 oas=48 concat=most",
                ParseErrorKind::BadConcat("most".into()),
                "t:2: domain: concat must be required or max, not 'most'",
            ),
            (
                "domain d2 fmt=arm64-s1 granule=4k ias=0x100000000 oas=48",
                ParseErrorKind::OutOfRange("ias", "0x100000000".into()),
                "t:2: domain: ias=0x100000000 out of range",
            ),
            (
                "map iova=0",
                ParseErrorKind::MissingName,
                "t:2: map: missing domain name",
            ),
        ];
        for (line, kind, msg) in cases {
            let e = parse("t", &format!("{d}{line}\n")).unwrap_err();
            assert_eq!(
                (&e.kind, e.line, e.to_string().as_str()),
                (kind, 2, *msg),
                "{line}"
            );
        }
    }
}
