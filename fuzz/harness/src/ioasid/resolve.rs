//! `IoOp` → trace command, against the model's state now.

use ptfuzz_engine::ioasid::INVALID_IOASID;
use ptfuzz_engine::{DomainConfig, FormatKind, Granule, Prot};
use ptfuzz_oracles::ioasid::IoasidModel;

use super::input::{IdPick, IoOp, IoasidInput};
use crate::trace::{Command, IoasidCommand};

/// The target's two domains: `d0` (stage 1, 48 bits) and `d1` (stage 2, 40 bits).
pub fn domains() -> [(&'static str, DomainConfig); 2] {
    [
        (
            "d0",
            DomainConfig::new(FormatKind::Arm64S1, Granule::G4K, 48, 48),
        ),
        (
            "d1",
            DomainConfig::new(FormatKind::Arm64S2, Granule::G4K, 40, 40),
        ),
    ]
}

/// Pages of the window map, unmap and translate work in.
const PAGES: u64 = 16;
const PAGE: u64 = 0x1000;

fn dom_name(d: u8) -> crate::trace::Name {
    domains()[d as usize % 2].0.into()
}

fn pick_id(p: IdPick, model: &IoasidModel) -> u32 {
    let nth = |v: Vec<u32>, n: u8| (!v.is_empty()).then(|| v[n as usize % v.len()]);
    let live = || {
        model
            .outstanding()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>()
    };
    let n = p.0;
    let small = n as u32 % 12;
    match n {
        0..=159 => nth(live(), n).unwrap_or(small),
        160..=207 => {
            let bound = model.bindings().into_iter().map(|(id, _)| id).collect();
            nth(bound, n).or_else(|| nth(live(), n)).unwrap_or(small)
        }
        208..=239 => small,
        _ => [
            INVALID_IOASID,
            INVALID_IOASID - 1,
            INVALID_IOASID - 2,
            0xf_ffff,
            0x10_0000,
        ][n as usize % 5],
    }
}

/// `(min, max)` from a byte: mostly small ranges that run out, sometimes the whole 20-bit
/// PASID space, the top of the ID space, or a bad range.
fn range(r: u8) -> (u32, u32) {
    let k = (r / 8) as u32;
    match r % 8 {
        0..=3 => {
            let min = k % 6;
            (min, min + (k / 6) % 4)
        }
        4 => (k % 2, 0xf_ffff),
        5 => (5, 2),
        6 => (INVALID_IOASID - 2 - k % 2, INVALID_IOASID - 1),
        _ => (0, INVALID_IOASID),
    }
}

fn private(p: u8) -> u64 {
    (p as u64 % 3) * 0x10
}

/// The command for `op`, given the model's state now.
pub fn command(op: &IoOp, input: &IoasidInput, model: &IoasidModel) -> Command {
    let io = |c| Command::Ioasid(c);
    match *op {
        IoOp::Alloc {
            set,
            range: r,
            data,
        } => {
            let (min, max) = range(r);
            io(IoasidCommand::Alloc {
                set: 1 + set as u32 % 3,
                min,
                max,
                data: data as u64,
            })
        }
        IoOp::Free { id } => io(IoasidCommand::Free {
            id: pick_id(id, model),
        }),
        IoOp::Find { id, set, getter } => {
            let id = pick_id(id, model);
            // No set, the ID's own set, or any set (sets 1..=3 are used; 0 never is).
            let own = model
                .outstanding()
                .into_iter()
                .find(|(i, _)| *i == id)
                .map(|(_, e)| e.set.0);
            let set = match set {
                0..=95 => None,
                96..=191 => Some(own.unwrap_or(1)),
                _ => Some(set as u32 % 4),
            };
            io(IoasidCommand::Find { id, set, getter })
        }
        IoOp::SetData { id, data } => io(IoasidCommand::SetData {
            id: pick_id(id, model),
            data: data as u64,
        }),
        IoOp::Register { ops, private: p } => {
            let ops = ops % 3;
            io(IoasidCommand::Register {
                ops: ops as u32 + 1,
                private: private(p),
                script: input.scripts[ops as usize].behaviours(),
            })
        }
        IoOp::Unregister { pick } => {
            let pairs: Vec<(u32, u64)> = model
                .groups()
                .into_iter()
                .flat_map(|(o, ms)| ms.into_iter().map(move |m| (o.0, m)))
                .collect();
            let (ops, private) = if pick < 0xe0 && !pairs.is_empty() {
                pairs[pick as usize % pairs.len()]
            } else {
                (1 + pick as u32 % 3, private(pick / 3))
            };
            io(IoasidCommand::Unregister { ops, private })
        }
        IoOp::Bind { id, dom } => io(IoasidCommand::Bind {
            id: pick_id(id, model),
            dom: dom_name(dom),
        }),
        IoOp::Unbind { id } => io(IoasidCommand::Unbind {
            id: pick_id(id, model),
        }),
        IoOp::Translate { id, page } => io(IoasidCommand::Translate {
            id: pick_id(id, model),
            iova: (page as u64 % PAGES) * PAGE + (page as u64 / PAGES) * 0x10,
        }),
        IoOp::Map { dom, page, count } => Command::Map {
            dom: dom_name(dom),
            iova: (page as u64 % PAGES) * PAGE,
            // Each domain maps to its own output range, so a translation names its domain.
            pa: 0x4000_0000 + ((dom as u64 % 2) << 24) + (page as u64 / PAGES) * PAGE,
            pgsize: PAGE,
            count: 1 + count as u64 % 4,
            prot: Prot::READ | Prot::WRITE,
        },
        IoOp::Unmap { dom, page, count } => Command::Unmap {
            dom: dom_name(dom),
            iova: (page as u64 % PAGES) * PAGE,
            pgsize: PAGE,
            count: 1 + count as u64 % 4,
        },
    }
}
