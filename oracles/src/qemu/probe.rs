//! Which addresses to probe after an op: the pages the op touched (its ends and middle),
//! their neighbours, and a few live mappings elsewhere, at offsets and with accesses chosen
//! by a hash of the op index, so a replay probes exactly the same ones.

use super::predict::Access;
use crate::model::Model;

/// One DMA the oracle will issue: 8 bytes at `iova`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probe {
    pub iova: u64,
    pub access: Access,
}

/// Bytes one probe moves (at most 2 fault events each, §8).
pub const PROBE_BYTES: u64 = 8;

fn mix(mut x: u64) -> u64 {
    x ^= x >> 31;
    x = x.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^ (x >> 32)
}

/// A probe address inside the page at `page`, 8-byte aligned, chosen by `h`.
fn at(page: u64, granule: u64, h: u64) -> u64 {
    page + (h % (granule / PROBE_BYTES)) * PROBE_BYTES
}

/// Probes after op `op` touched `[lo, hi)` (empty for ops touching no range): first reads of
/// `cached` pages in the range (translations QEMU may still hold: where a missing
/// invalidation shows), then reads of the touched ends and middle and of both neighbours,
/// a write of the first touched page, and reads and writes of `live` mapped pages chosen
/// from the model; at most `max` in all.
#[allow(clippy::too_many_arguments)]
pub fn select(
    model: &Model,
    granule: u64,
    ias_end: u64,
    op: usize,
    (lo, hi): (u64, u64),
    cached: &[u64],
    live: usize,
    max: usize,
) -> Vec<Probe> {
    let mut h = mix(op as u64 ^ 0x51ab_c0de);
    let mut next = || {
        h = mix(h.wrapping_add(0x2545_f491_4f6c_dd1d));
        h
    };
    let mut out = Vec::new();
    let push = |iova: u64, access: Access, out: &mut Vec<Probe>| {
        if iova < ias_end
            && out.len() < max
            && !out
                .iter()
                .any(|p: &Probe| p.iova == iova && p.access == access)
        {
            out.push(Probe { iova, access });
        }
    };
    let lo_page = lo & !(granule - 1);
    for &page in cached.iter().take(max / 2) {
        push(at(page, granule, next()), Access::Read, &mut out);
    }
    if lo < hi {
        let last = (hi - 1) & !(granule - 1);
        let pages = (last - lo_page) / granule + 1;
        let middle = lo_page + (next() % pages) * granule;
        for page in [lo_page, last, middle] {
            push(at(page, granule, next()), Access::Read, &mut out);
        }
        if let Some(below) = lo_page.checked_sub(granule) {
            push(at(below, granule, next()), Access::Read, &mut out);
        }
        push(
            at(last.saturating_add(granule), granule, next()),
            Access::Read,
            &mut out,
        );
        push(at(lo_page, granule, next()), Access::Write, &mut out);
    }
    let leaves = model.leaf_count();
    if leaves > 0 {
        for i in 0..live {
            let n = (next() as usize) % leaves;
            if let Some((iova, _, size, _)) = model.leaf_nth(n) {
                let page = iova + (next() % (size / granule)) * granule;
                let access = if i % 2 == 0 {
                    Access::Read
                } else {
                    Access::Write
                };
                push(at(page, granule, next()), access, &mut out);
            }
        }
    }
    out
}
