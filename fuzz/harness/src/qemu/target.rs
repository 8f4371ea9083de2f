//! The `qemu_diff` fuzz target: the page-table op language, restricted to what QEMU's
//! SMMUv3 translates (AArch64 formats, stage-2 IPA sizes QEMU takes, output addresses in
//! the guest's data window), run through [`QemuDiff`].

use std::ops::Range;

use ptfuzz_engine::{Concat, DomainConfig, FormatKind, Granule, DEFAULT_PHYS_BASE};
use ptfuzz_oracles::qemu::oracle::{OracleError, QemuOracle};
use ptfuzz_oracles::qemu::stream::QEMU_OAS;
use ptfuzz_oracles::Model;

use super::diff::{QemuDiff, Stop, NESTED_CD_IPA};
use super::session;
use crate::input::{resolve_config, ConfigChoice, Input, Pools, Resolver, MAX_OPS};
use crate::outcome::Outcome;
use crate::run::{decode, Crash};
use crate::trace::{Command, Trace, TraceLine};

/// A configuration QEMU translates, derived from any choice: AArch32 formats become their
/// AArch64 counterparts (armv7s, whose short descriptors the SMMUv3 cannot walk, becomes
/// arm64-s1: the QEMU target never runs an armv7s domain), a stage-2 IPA is at most QEMU's 44 bits, tables start at RAM base.
pub fn resolve_qemu_config(c: &ConfigChoice) -> (DomainConfig, bool) {
    let (mut cfg, custom) = resolve_config(c);
    cfg.format = match cfg.format {
        FormatKind::Arm32LpaeS1 => FormatKind::Arm64S1,
        FormatKind::Arm32LpaeS2 => FormatKind::Arm64S2,
        FormatKind::Armv7s => FormatKind::Arm64S1,
        f => f,
    };
    if cfg.format.is_stage2() {
        cfg.ias = cfg.ias.min(QEMU_OAS);
    }
    cfg.phys_base = DEFAULT_PHYS_BASE;
    while Model::new(&cfg).is_err() && cfg.oas < 48 {
        cfg.oas += 1;
    }
    if Model::new(&cfg).is_err() {
        cfg = DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48);
    }
    (cfg, custom)
}

/// Where a nested input's stage-1 tables start (above the CD page at RAM base, which
/// [`NESTED_CD_IPA`] names) and where its stage-2 tables live.
pub const NESTED_S1_BASE: u64 = 0x4010_0000;
pub const NESTED_S2_BASE: u64 = 0x4800_0000;

/// Stage-2 IPA sizes of a nested input's `d1`: one root table, or (4K from level 1 or 0,
/// 16K from level 2 or 1) concatenated roots; every one covers guest RAM.
const NESTED_S2_IAS: [u32; 5] = [36, 39, 40, 42, 44];

/// For `qemu_diff`, the choices that would resolve to arm32-lpae-s2 (which QEMU cannot walk)
/// build a nested stream instead: the op language drives a stage-1 domain `d0` (granule and
/// IAS from the choice, tables at [`NESTED_S1_BASE`]) whose output goes through a stage-2
/// domain `d1` whose granule (4K or 16K) and IPA size ([`NESTED_S2_IAS`]; the engine picks
/// the start level and so the concatenation) come from the choice's `oas` byte, which the
/// nested stage 1 does not use. 64K is left out: its smallest block (512 MiB) cannot swap
/// the halves of the data window. Decoding is unchanged.
pub fn nested_configs(c: &ConfigChoice) -> Option<(DomainConfig, DomainConfig)> {
    if crate::input::resolve::format_of(c) != FormatKind::Arm32LpaeS2 {
        return None;
    }
    let (base, _) = resolve_config(c);
    let mut s1 = DomainConfig::new(
        FormatKind::Arm64S1,
        Granule::ALL[c.granule as usize % 3],
        base.ias,
        40,
    );
    s1.coherent = c.coherent;
    s1.phys_base = NESTED_S1_BASE;
    let granule = [Granule::G4K, Granule::G16K][c.oas as usize & 1];
    let ias = NESTED_S2_IAS[(c.oas as usize >> 1) % NESTED_S2_IAS.len()];
    let mut s2 = DomainConfig::new(FormatKind::Arm64S2, granule, ias, 44);
    s2.phys_base = NESTED_S2_BASE;
    // With OAS 44 the architecture never requires a concatenated root here, so the deepest
    // start level (`concat=max`, what reaches QEMU's concatenated-root handling) is the
    // usual choice; bit 5 of the byte asks for Linux's layout instead.
    s2.concat = if c.oas & 0x20 == 0 {
        Concat::Max
    } else {
        Concat::Required
    };
    Some((s1, s2))
}

/// The stage-2 mappings of a nested input, then the attach: IPA = PA for RAM below the data
/// window (the CD and the stage-1 tables), and the two halves of the data window swapped, so
/// a stage-2 that is skipped or wrong shows.
fn nested_setup(window: &Range<u64>, s2_granule: Granule) -> Vec<Command> {
    // The level-2 block of the granule: 2 MiB (4K) or 32 MiB (16K).
    let g = s2_granule.size();
    let block = g << (g.trailing_zeros() - 3);
    let half = ((window.end - window.start) / 2) & !(block - 1);
    let map = |iova: u64, pa: u64, bytes: u64| Command::Map {
        dom: "d1".into(),
        iova,
        pa,
        pgsize: block,
        count: bytes / block,
        prot: ptfuzz_engine::Prot::RW,
    };
    vec![
        map(NESTED_CD_IPA, NESTED_CD_IPA, window.start - NESTED_CD_IPA),
        map(window.start, window.start + half, half),
        map(window.start + half, window.start, half),
        Command::Attach {
            dom: "d0".into(),
            nest: Some("d1".into()),
        },
    ]
}

/// Moves a map's output address into the data window (same offset modulo the window,
/// aligned to the page size), so its pages can be probed.
pub(crate) fn into_window(mut cmd: Command, window: &Range<u64>) -> Command {
    if let Command::Map { pa, pgsize, .. } = &mut cmd {
        if pgsize.is_power_of_two() && !window.contains(pa) {
            *pa = (window.start + *pa % (window.end - window.start)) & !(*pgsize - 1);
        }
    }
    cmd
}

/// How a qemu_diff input ended when it did not pass.
#[derive(Debug)]
pub enum QemuStop {
    /// A divergence (engine vs model, or QEMU vs model): a finding.
    Crash(Box<Crash>),
    /// QEMU failed (died, hung): not a finding about the engine; the input is saved.
    Oracle(OracleError, Trace),
}

/// Runs `input` against engine, model and QEMU; returns the trace it produced.
pub fn execute_qemu(oracle: &mut QemuOracle, input: &Input) -> Result<Trace, QemuStop> {
    let nested = nested_configs(&input.config);
    let (cfg, custom_alloc) = match nested {
        Some((s1, _)) => (s1, false),
        None => resolve_qemu_config(&input.config),
    };
    let dom = crate::trace::Name::Borrowed("d0");
    let mut trace = Trace::default();
    let window = oracle.data_window();
    let mut setup = vec![Command::Domain {
        name: dom.clone(),
        cfg,
        custom_alloc,
    }];
    if let Some((_, s2)) = nested {
        setup.push(Command::Domain {
            name: "d1".into(),
            cfg: s2,
            custom_alloc: false,
        });
        setup.extend(nested_setup(&window, s2.granule));
    }
    let mut diff = QemuDiff::new(oracle).map_err(|e| QemuStop::Oracle(e, trace.clone()))?;
    for command in setup {
        let r = match &command {
            Command::Domain {
                name,
                cfg,
                custom_alloc,
            } => diff.create(name, cfg, *custom_alloc),
            c => diff.apply(c),
        };
        let line = trace.lines.len() + 1;
        trace.lines.push(TraceLine {
            line,
            command,
            expect: None,
        });
        match r {
            Ok(Outcome::Domain(Err(_))) => {
                panic!("resolved QEMU configuration refused by both sides: {trace}")
            }
            Ok(o) => trace.lines.last_mut().expect("pushed").expect = Some(o.facts()),
            Err(Stop::Failure(kind)) => {
                return Err(QemuStop::Crash(Box::new(Crash { op: 0, kind, trace })))
            }
            Err(Stop::Oracle(e)) => return Err(QemuStop::Oracle(e, trace)),
        }
    }
    let pools = Pools::new(diff.model(&dom).expect("created"));
    let resolver = Resolver {
        pools,
        dom: dom.clone(),
    };
    for (i, op) in input.ops.iter().take(MAX_OPS).enumerate() {
        let command = into_window(
            resolver.command(op, diff.model(&dom).expect("created")),
            &window,
        );
        let line = trace.lines.len() + 1;
        match diff.apply(&command) {
            Ok(outcome) => trace.lines.push(TraceLine {
                line,
                command,
                expect: Some(outcome.facts()),
            }),
            Err(stop) => {
                trace.lines.push(TraceLine {
                    line,
                    command,
                    expect: None,
                });
                return Err(match stop {
                    Stop::Failure(kind) => QemuStop::Crash(Box::new(Crash { op: i, kind, trace })),
                    Stop::Oracle(e) => QemuStop::Oracle(e, trace),
                });
            }
        }
    }
    match diff.finish() {
        Ok(()) => Ok(trace),
        Err(Stop::Failure(kind)) => {
            let op = input.ops.len().min(MAX_OPS);
            Err(QemuStop::Crash(Box::new(Crash { op, kind, trace })))
        }
        Err(Stop::Oracle(e)) => Err(QemuStop::Oracle(e, trace)),
    }
}

/// The fuzz-target body: panics on a divergence. A QEMU failure (death, hang) saves the
/// input, restarts QEMU and runs the input once more; an input that fails QEMU twice is
/// reported on stderr and kept, but it is not a finding about the engine.
pub fn run_qemu(input: &Input, data: &[u8]) {
    for attempt in 0..2 {
        if let Err(e) = session::ensure_started() {
            panic!("QEMU cannot start ({e}); install it with qemu-images/install-qemu.sh");
        }
        let (err, trace) = match session::with_oracle(|o| Ok(execute_qemu(o, input))) {
            Ok(Ok(_)) => return,
            Ok(Err(QemuStop::Crash(c))) => panic!("{c}"),
            Ok(Err(QemuStop::Oracle(OracleError::Unsupported(why), t))) => {
                panic!("qemu_diff resolved a configuration QEMU cannot take ({why}):\n{t}")
            }
            Ok(Err(QemuStop::Oracle(e, t))) => (e, Some(t)),
            Err(e) => (e, None),
        };
        session::discard();
        let why = format!(
            "{err}\n{}",
            trace.map(|t| t.to_string()).unwrap_or_default()
        );
        match session::save_failure(Some(data), &why) {
            Ok(path) if attempt == 0 => {
                eprintln!(
                    "ptfuzz: QEMU failed ({err}); input saved to {}; restarting QEMU, retrying",
                    path.display()
                )
            }
            Ok(path) => eprintln!(
                "ptfuzz: QEMU failed again ({err}); input kept in {}",
                path.display()
            ),
            Err(io) => eprintln!("ptfuzz: QEMU failed ({err}); could not save the input: {io}"),
        }
    }
}

/// `run_qemu` on raw bytes (AFL, libFuzzer); undecodable bytes are not an input.
pub fn run_qemu_bytes(data: &[u8]) {
    if let Some(input) = decode(data) {
        run_qemu(&input, data);
    }
}
