//! Trace → raw bytes, for the targets whose op language can say a trace: bytes that decode
//! (as the fuzz targets decode them) into an input whose ops resolve to the very commands
//! of the trace.
//!
//! The page-table op language has a raw variant for every address, size and count, and
//! with those an op resolves to the same command whatever the model holds. So a trace
//! encodes op by op: the domain line by a search over the configuration bytes, every other
//! line as one op with raw operands. Then the bytes are decoded and resolved again, and the
//! first line that comes out different is named: a count above what one op may map, a
//! `fail_nth` beyond 7, an address `qemu_diff` moves into QEMU's window.

use std::ops::Range;

use arbitrary::{Arbitrary, Unstructured};
use ptfuzz_engine::{DomainConfig, FormatKind, Granule, DEFAULT_PHYS_BASE};
use ptfuzz_oracles::Model;

use super::TargetName;
use crate::input::resolve::FUZZED_FORMATS;
use crate::input::{
    resolve_config, ConfigChoice, Input, Pools, Resolver, CONFIG_FULL, LEAD_RAW, MAX_OPS,
    PROT_ZERO, TAG_OP, TIGHT_WINDOW,
};
use crate::trace::{Command, Trace, TraceLine};

/// Why a trace does not encode.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    #[error(
        "the {0} target's op language picks operands by position among pools and the \
         model's state, so its traces do not encode into raw bytes; replay the trace instead"
    )]
    Unsupported(TargetName),
    #[error("the trace holds no command")]
    Empty,
    #[error("line {line}: {word}: {why}")]
    Line {
        line: usize,
        word: &'static str,
        why: String,
    },
}

fn at(tl: &TraceLine, why: impl Into<String>) -> EncodeError {
    EncodeError::Line {
        line: tl.line,
        word: tl.command.word(),
        why: why.into(),
    }
}

/// The bytes `arbitrary` reads back as the values written, in order.
#[derive(Default)]
struct Bytes(Vec<u8>);

impl Bytes {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// Op `k` of `n`: one byte (`crate::input` decodes `byte % n`).
    fn variant(&mut self, k: u32, n: u32) {
        debug_assert!(k < n && n <= 256);
        self.u8(k as u8);
    }
}

// Variant indices of the op language's enums (crate::input), in declaration order.
const OP_VARIANTS: u32 = TAG_OP.len() as u32;
const OP_MAP: u32 = 0;
const OP_UNMAP: u32 = 1;
const OP_LOOKUP: u32 = 2;
const OP_SYNC: u32 = 3;
const OP_GRACE: u32 = 4;
const OP_FAIL_NTH: u32 = 5;
const OP_CLEAR: u32 = 6;

/// A choice in its full form: the marker, then its six bytes.
fn choice_bytes(c: &ConfigChoice) -> Vec<u8> {
    let mut v = vec![CONFIG_FULL];
    v.extend_from_slice(&c.to_bytes());
    v
}

/// The first choice (in a fixed order) that `resolve` maps to `want`, among those whose
/// format byte picks a format `kinds` admits.
fn find_choice<T: PartialEq>(
    cfg: &DomainConfig,
    kinds: impl Fn(FormatKind) -> bool,
    custom: bool,
    want: &T,
    resolve: impl Fn(&ConfigChoice) -> T,
) -> Option<ConfigChoice> {
    // Every format a fuzz input can pick (armv7s too), by its format byte.
    let formats = FUZZED_FORMATS.len() as u8;
    let windows: &[u8] = if cfg.phys_base == DEFAULT_PHYS_BASE {
        &[0]
    } else {
        &[TIGHT_WINDOW, TIGHT_WINDOW + 1, 0]
    };
    // Only the format bytes `kinds` admits, and the granule byte of `cfg`'s granule, are
    // tried (a refused choice falls back to arm64-s1 with 4K, which one of those reaches).
    let granule = Granule::ALL
        .iter()
        .position(|g| *g == cfg.granule)
        .unwrap_or(0) as u8;
    // Host page bytes: 0 is the granule; 2 and 3 are 16K and 64K where larger than it.
    let host_page = match cfg.host_page.map(|g| g.size()) {
        Some(s) if s == 16 << 10 => 2,
        Some(s) if s == 64 << 10 => 3,
        _ => 0,
    };
    for format in (0..formats)
        .filter(|f| kinds(FUZZED_FORMATS[usize::from(*f)]))
        .flat_map(|f| [f, f | crate::input::CONCAT_MAX_BIT])
    {
        for &window in windows {
            for ias in 0..=255u8 {
                for oas in 0..=255u8 {
                    let c = ConfigChoice {
                        format,
                        granule,
                        ias,
                        oas,
                        coherent: cfg.coherent,
                        custom_alloc: custom,
                        window,
                        host_page,
                    };
                    if resolve(&c) == *want {
                        return Some(c);
                    }
                }
            }
        }
    }
    None
}

/// Writes one op with raw operands; the error says why a command is no op of the language.
fn op(b: &mut Bytes, tl: &TraceLine) -> Result<(), EncodeError> {
    let raw = |b: &mut Bytes, v: u64| {
        b.u8(LEAD_RAW);
        b.u64(v);
    };
    if tl.command.domain() != "d0" {
        return Err(at(tl, "the target's ops act on its domain d0 only"));
    }
    match tl.command {
        Command::Map {
            iova,
            pa,
            pgsize,
            count,
            prot,
            ..
        } => {
            b.variant(OP_MAP, OP_VARIANTS);
            raw(b, iova);
            raw(b, pa);
            raw(b, pgsize);
            raw(b, count);
            b.u8(prot.bits() ^ PROT_ZERO);
        }
        Command::Unmap {
            iova,
            pgsize,
            count,
            ..
        } => {
            b.variant(OP_UNMAP, OP_VARIANTS);
            raw(b, iova);
            raw(b, pgsize);
            raw(b, count);
        }
        Command::Lookup { iova, .. } => {
            b.variant(OP_LOOKUP, OP_VARIANTS);
            raw(b, iova);
            b.u32(0);
        }
        Command::Sync { .. } => b.variant(OP_SYNC, OP_VARIANTS),
        Command::Grace { .. } => b.variant(OP_GRACE, OP_VARIANTS),
        Command::Clear { .. } => b.variant(OP_CLEAR, OP_VARIANTS),
        Command::FailNth { n, .. } if n < 8 => {
            b.variant(OP_FAIL_NTH, OP_VARIANTS);
            b.u8(n as u8);
        }
        Command::FailNth { n, .. } => {
            return Err(at(tl, format!("n={n}: the op language says n=0..7 only")))
        }
        _ => return Err(at(tl, "no op of the page-table op language says this")),
    }
    Ok(())
}

/// The ops of `lines`, then a check that the bytes decode and resolve back to them.
fn ops(
    mut b: Bytes,
    cfg: &DomainConfig,
    lines: &[TraceLine],
    check: impl Fn(&TraceLine, &Command) -> Result<(), EncodeError>,
) -> Result<Vec<u8>, EncodeError> {
    if let Some(tl) = lines.get(MAX_OPS) {
        return Err(at(tl, format!("an input runs at most {MAX_OPS} ops")));
    }
    for tl in lines {
        op(&mut b, tl)?;
    }
    let input = Input::arbitrary_take_rest(Unstructured::new(&b.0))
        .expect("the page-table input decodes from any bytes");
    let model = Model::new(cfg).expect("a resolved configuration");
    let resolver = Resolver {
        pools: Pools::new(&model),
        dom: "d0".into(),
    };
    // Raw operands do not depend on the model's state: a fresh model resolves them alike.
    for (tl, o) in lines.iter().zip(&input.ops) {
        let got = resolver.command(o, &model);
        if got != tl.command {
            return Err(at(
                tl,
                format!("the op language cannot say it; it says `{got}`"),
            ));
        }
        check(tl, &got)?;
    }
    Ok(b.0)
}

/// The domain line every page-table trace starts with: `domain d0 …`.
fn domain(tl: Option<&TraceLine>) -> Result<(&TraceLine, DomainConfig, bool), EncodeError> {
    match tl {
        None => Err(EncodeError::Empty),
        Some(
            tl @ TraceLine {
                command:
                    Command::Domain {
                        name,
                        cfg,
                        custom_alloc,
                    },
                ..
            },
        ) if name == "d0" => Ok((tl, *cfg, *custom_alloc)),
        Some(tl) => Err(at(tl, "an input's trace starts with `domain d0 …`")),
    }
}

fn unreachable_config(tl: &TraceLine) -> EncodeError {
    at(
        tl,
        "no configuration bytes resolve to this domain (the fuzz targets pick IAS/OAS from \
         a pool, and table frames at the default base or in a tight window below 2^OAS)",
    )
}

/// The formats of `cfg`'s stage: the AArch32 and AArch64 ones resolve into each other.
fn same_stage(cfg: &DomainConfig) -> impl Fn(FormatKind) -> bool {
    let stage2 = cfg.format.is_stage2();
    move |k: FormatKind| k.is_stage2() == stage2
}

/// A `pagetable` trace as raw bytes.
pub fn pagetable(trace: &Trace) -> Result<Vec<u8>, EncodeError> {
    let (first, cfg, custom) = domain(trace.lines.first())?;
    let choice = find_choice(
        &cfg,
        same_stage(&cfg),
        custom,
        &(cfg, custom),
        resolve_config,
    )
    .ok_or_else(|| unreachable_config(first))?;
    let mut b = Bytes::default();
    b.0.extend_from_slice(&choice_bytes(&choice));
    ops(b, &cfg, &trace.lines[1..], |_, _| Ok(()))
}

/// A `qemu_diff` trace as raw bytes: its domain (or nested pair, whose stage-2 mappings and
/// attach the target adds itself), then the ops, whose output addresses must lie in QEMU's
/// data window, or where the target's move into the window leaves them.
pub fn qemu_diff(trace: &Trace) -> Result<Vec<u8>, EncodeError> {
    let (first, cfg, custom) = domain(trace.lines.first())?;
    let window = data_window().map_err(|e| at(first, e))?;
    let nested = match trace.lines.get(1) {
        Some(TraceLine {
            command: Command::Domain { name, cfg: s2, .. },
            ..
        }) if name == "d1" => Some(*s2),
        _ => None,
    };
    let (choice, setup) = match nested {
        None => {
            // A choice that builds a nested stream is not this plain one.
            let plain = |c: &ConfigChoice| {
                crate::qemu::nested_configs(c)
                    .is_none()
                    .then(|| crate::qemu::resolve_qemu_config(c))
            };
            let c = find_choice(&cfg, same_stage(&cfg), custom, &Some((cfg, custom)), plain)
                .ok_or_else(|| unreachable_config(first))?;
            (c, 1)
        }
        Some(s2) => {
            let want = Some((cfg, s2));
            let mut nested_cfg = cfg;
            // The nested stage 1 takes its tables from a fixed base, not from the window byte.
            nested_cfg.phys_base = DEFAULT_PHYS_BASE;
            let s2_only = |k| k == FormatKind::Arm32LpaeS2;
            let c = find_choice(
                &nested_cfg,
                s2_only,
                false,
                &want,
                crate::qemu::nested_configs,
            )
            .ok_or_else(|| unreachable_config(first))?;
            // The stage-2 domain, its three mappings and the attach come from the target.
            let setup = 2 + trace.lines[2..]
                .iter()
                .take_while(|tl| {
                    tl.command.domain() == "d1" || matches!(tl.command, Command::Attach { .. })
                })
                .count();
            (c, setup)
        }
    };
    let mut b = Bytes::default();
    b.0.extend_from_slice(&choice_bytes(&choice));
    ops(b, &cfg, &trace.lines[setup..], |tl, c| {
        let moved = crate::qemu::target::into_window(c.clone(), &window);
        match (c, &moved) {
            (Command::Map { pa, .. }, Command::Map { pa: to, .. }) if to != pa => Err(at(
                tl,
                format!(
                    "pa={pa:#x} is outside QEMU's data window {:#x}..{:#x}; the qemu_diff \
                     target moves it to {to:#x}",
                    window.start, window.end
                ),
            )),
            _ => Ok(()),
        }
    })
}

/// QEMU's data window, from the machine profile (no QEMU is started).
fn data_window() -> Result<Range<u64>, String> {
    ptfuzz_oracles::qemu::driver::Profile::load_default()
        .map(|p| p.data_window)
        .map_err(|e| format!("cannot read QEMU's machine profile: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(raw: &[u8]) -> Input {
        Input::arbitrary_take_rest(Unstructured::new(raw)).unwrap()
    }

    fn line(command: Command) -> TraceLine {
        TraceLine {
            line: 0,
            command,
            expect: None,
        }
    }

    /// Plain and nested qemu_diff traces encode into choices that build the same stream,
    /// with the setup lines the target adds itself left out of the ops.
    #[test]
    fn qemu_diff_traces_encode_plain_and_nested() {
        let window = data_window().unwrap();
        let map = |dom: &'static str, pa| {
            line(Command::Map {
                dom: dom.into(),
                iova: 0x20_0000,
                pa,
                pgsize: 0x1000,
                count: 2,
                prot: ptfuzz_engine::Prot::RW,
            })
        };
        let mut tried = 0;
        for format in 0..4u8 {
            for oas in [0u8, 3, 0x21] {
                let c = ConfigChoice {
                    format,
                    granule: 1,
                    ias: 2,
                    oas,
                    coherent: true,
                    custom_alloc: false,
                    window: 0,
                    host_page: 0,
                };
                let mut trace = Trace::default();
                let nested = crate::qemu::nested_configs(&c);
                match nested {
                    Some((s1, s2)) => {
                        for (name, cfg) in [("d0", s1), ("d1", s2)] {
                            trace.lines.push(line(Command::Domain {
                                name: name.into(),
                                cfg,
                                custom_alloc: false,
                            }));
                        }
                        for _ in 0..3 {
                            trace.lines.push(map("d1", 0x4000_0000));
                        }
                        trace.lines.push(line(Command::Attach {
                            dom: "d0".into(),
                            nest: Some("d1".into()),
                        }));
                    }
                    None => {
                        let (cfg, custom_alloc) = crate::qemu::resolve_qemu_config(&c);
                        trace.lines.push(line(Command::Domain {
                            name: "d0".into(),
                            cfg,
                            custom_alloc,
                        }));
                    }
                }
                trace.lines.push(map("d0", window.start));
                let raw = qemu_diff(&trace).unwrap_or_else(|e| panic!("{c:?}: {e}"));
                let input = decoded(&raw);
                assert_eq!(crate::qemu::nested_configs(&input.config), nested, "{c:?}");
                if nested.is_none() {
                    let want = crate::qemu::resolve_qemu_config(&c);
                    assert_eq!(crate::qemu::resolve_qemu_config(&input.config), want);
                }
                assert_eq!(input.ops.len(), 1, "only the op line is an op: {c:?}");
                tried += 1;
                // An output address QEMU cannot see is named.
                let last = trace.lines.len() - 1;
                trace.lines[last] = map("d0", 0x1000);
                let e = qemu_diff(&trace).unwrap_err().to_string();
                assert!(e.contains("outside QEMU's data window"), "{e}");
            }
        }
        assert_eq!(tried, 12);
    }
}
