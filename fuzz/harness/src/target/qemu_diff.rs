//! `qemu_diff`: the page-table op language, restricted to what QEMU's SMMUv3 translates,
//! checked against QEMU translating the same table bytes as well (`crate::qemu`). One QEMU
//! per thread, reused; a QEMU that dies or hangs is restarted and the input run once more.

use ptfuzz_oracles::qemu::oracle::OracleError;

use super::{encode, EncodeError, Stop, Target, TargetName};
use crate::campaign::swarm::Swarm;
use crate::input::{Input, MAX_OPS};
use crate::qemu::{execute_qemu, session, QemuStop};
use crate::trace::Trace;

pub struct QemuDiff;

impl Target for QemuDiff {
    const NAME: TargetName = TargetName::QemuDiff;
    type Input = Input;

    fn ops(input: &Input) -> usize {
        input.ops.len().min(MAX_OPS)
    }

    fn execute(input: &Input) -> Result<Trace, Stop> {
        let mut why = String::new();
        for _ in 0..2 {
            if let Err(e) = session::ensure_started() {
                panic!("QEMU cannot start ({e}); install it with qemu-images/install-qemu.sh");
            }
            match session::with_oracle(|o| Ok(execute_qemu(o, input))) {
                Ok(Ok(trace)) => return Ok(trace),
                Ok(Err(QemuStop::Crash(c))) => return Err(Stop::Crash(c)),
                Ok(Err(QemuStop::Oracle(OracleError::Unsupported(w), t))) => {
                    panic!("qemu_diff resolved a configuration QEMU cannot take ({w}):\n{t}")
                }
                Ok(Err(QemuStop::Oracle(e, t))) => why = format!("QEMU failed: {e}\n{t}"),
                Err(e) => why = format!("QEMU failed: {e}"),
            }
            session::discard();
        }
        Err(Stop::Unjudged(format!("twice; {why}")))
    }

    /// The engines' body keeps every input that broke QEMU (`session::save_failure`).
    fn fuzz(data: &[u8]) {
        crate::qemu::run_qemu_bytes(data)
    }

    /// The page-table swarm (the same op language): configurations the seeds never name.
    fn swarm(seed: u64) -> Option<Box<dyn FnMut() -> Input>> {
        let mut s = Swarm::new(seed);
        Some(Box::new(move || s.next_input()))
    }

    fn keep_unjudged(data: Option<&[u8]>, why: &str) {
        match session::save_failure(data, why) {
            Ok(p) => eprintln!("ptfuzz: {why}; input kept in {}", p.display()),
            Err(e) => eprintln!("ptfuzz: {why}; could not keep the input: {e}"),
        }
    }

    /// Through QEMU's SMMUv3 as well (the trace needs an `attach` line for probes).
    fn replay(trace: &Trace) -> Result<(), String> {
        session::with_oracle(|o| {
            Ok(crate::qemu::replay_qemu(
                o,
                "trace",
                trace,
                &mut std::io::sink(),
            ))
        })
        .map_err(|e| {
            session::discard();
            e.to_string()
        })?
        .map(|_| ())
    }

    fn encode(trace: &Trace) -> Result<Vec<u8>, EncodeError> {
        encode::qemu_diff(trace)
    }
}
