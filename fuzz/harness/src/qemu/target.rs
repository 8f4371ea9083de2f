//! The `qemu_diff` fuzz target: the page-table op language, restricted to what QEMU's
//! SMMUv3 translates (AArch64 formats, stage-2 IPA sizes QEMU takes, output addresses in
//! the guest's data window), run through [`QemuDiff`].

use std::ops::Range;

use ptfuzz_engine::{DomainConfig, FormatKind, Granule, DEFAULT_PHYS_BASE};
use ptfuzz_oracles::qemu::oracle::{OracleError, QemuOracle};
use ptfuzz_oracles::qemu::stream::QEMU_OAS;
use ptfuzz_oracles::Model;

use super::diff::{QemuDiff, Stop};
use super::session;
use crate::input::{resolve_config, ConfigChoice, Input, Pools, Resolver, MAX_OPS};
use crate::outcome::Outcome;
use crate::run::{decode, Crash};
use crate::trace::{Command, Trace, TraceLine};

/// A configuration QEMU translates, derived from any choice: AArch32 formats become their
/// AArch64 counterparts, a stage-2 IPA is at most QEMU's 44 bits, tables start at RAM base.
pub fn resolve_qemu_config(c: &ConfigChoice) -> (DomainConfig, bool) {
    let (mut cfg, custom) = resolve_config(c);
    cfg.format = match cfg.format {
        FormatKind::Arm32LpaeS1 => FormatKind::Arm64S1,
        FormatKind::Arm32LpaeS2 => FormatKind::Arm64S2,
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

/// Moves a map's output address into the data window (same offset modulo the window,
/// aligned to the page size), so its pages can be probed.
fn into_window(cmd: Command, window: &Range<u64>) -> Command {
    match cmd {
        Command::Map {
            dom,
            iova,
            pa,
            pgsize,
            count,
            prot,
        } if pgsize.is_power_of_two() && !window.contains(&pa) => {
            let pa = (window.start + pa % (window.end - window.start)) & !(pgsize - 1);
            Command::Map {
                dom,
                iova,
                pa,
                pgsize,
                count,
                prot,
            }
        }
        c => c,
    }
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
    let (cfg, custom_alloc) = resolve_qemu_config(&input.config);
    let dom = "d0".to_string();
    let mut trace = Trace::default();
    trace.lines.push(TraceLine {
        line: 1,
        command: Command::Domain {
            name: dom.clone(),
            cfg,
            custom_alloc,
        },
        expect: None,
    });
    let window = oracle.data_window();
    let mut diff = QemuDiff::new(oracle).map_err(|e| QemuStop::Oracle(e, trace.clone()))?;
    match diff.create(&dom, &cfg, custom_alloc) {
        Ok(Outcome::Domain(Ok(()))) => {}
        Ok(o) => panic!("resolved QEMU configuration refused by both sides ({o}): {cfg:?}"),
        Err(Stop::Failure(kind)) => {
            return Err(QemuStop::Crash(Box::new(Crash { op: 0, kind, trace })))
        }
        Err(Stop::Oracle(e)) => return Err(QemuStop::Oracle(e, trace)),
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
    Ok(trace)
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
        match session::save_failure(data, &why) {
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
