//! The independent table walker: decodes the device view of the engine's tables with its own
//! descriptor code (written from ARM-FACTS.md, never from the engine's `format`/`geometry`)
//! and checks it against the reference model and the allocator's metadata.
//!
//! - `params`: granule, sizes, start level, indexing (concatenated roots as one flat array);
//! - `descriptor`: LPAE descriptor types, block levels, output address, RES0, faults;
//! - `attrs`: decoded stage-1 / stage-2 leaf attributes and the ones a prot implies;
//! - `translate`: one input address through a memory-read callback;
//! - `leaves`: model leaves and unmapped samples against the walk;
//! - `structure`: every reachable table against the allocator, counters and model;
//! - `view`: the engine state the structure walk reads (device view, frame metadata).

pub mod attrs;
pub mod descriptor;
mod leaves;
mod logged;
pub mod params;
pub(crate) mod range;
pub mod short;
pub mod structure;
#[cfg(test)]
pub(crate) mod structure_tests;
#[cfg(test)]
mod tests;
pub mod translate;
pub mod view;

use ptfuzz_engine::{Domain, FlushOps};

pub use crate::divergence::Divergence;
use crate::finding::WalkerFinding;
use crate::model::Model;
pub use attrs::{LeafAttrs, S1Attrs, S2Attrs};
pub use descriptor::{decode, Descriptor, FaultKind};
use leaves::Walker;
pub use logged::{
    check_domain_logged, check_range_logged, check_short_domain_logged, check_short_range_logged,
};
pub use params::WalkParams;
pub use structure::StructureStats;
pub use translate::{translate, Fault, Translation};
pub use view::{FrameInfo, PageInfo, TableView};

/// The walk parameters of `dom`, after checking the model describes the same domain.
fn params<F: FlushOps>(dom: &Domain<F>, model: &Model) -> Result<WalkParams, Divergence> {
    let cfg = dom.config();
    let r = model.rules();
    if (r.granule, r.ias, r.oas) != (cfg.granule, cfg.ias, cfg.oas) {
        return Err(WalkerFinding::ModelConfig {
            model: (r.granule, r.ias, r.oas),
            domain: (cfg.granule, cfg.ias, cfg.oas),
        }
        .into());
    }
    Ok(WalkParams::for_domain(cfg, r))
}

fn walker<'a, F: FlushOps>(
    dom: &'a Domain<F>,
    p: &'a WalkParams,
) -> Walker<'a, impl Fn(u64) -> Option<u64> + 'a> {
    let mem = dom.mem();
    Walker {
        p,
        root: dom.root(),
        read: move |pa| mem.read_device(pa),
    }
}

/// Leaves translated from the root by a full check (the structure walk sees all of them).
const FULL_CHECK_TRANSLATIONS: usize = 8;

/// Checks that every leaf of the tables is a model leaf and vice versa (the structure walk),
/// and that a spread of model leaves translates (at first, middle and last byte) to the model's pa with the attributes the model's prot implies per SEMANTICS.md
/// "Descriptors" and with the model's leaf size; checks `samples` (and the neighbours just
/// below/above each model leaf, when not mapped in the model) against the model: unmapped
/// ones must give a translation fault; and checks the structure: every table reachable from
/// the root is Live in the allocator metadata at the right level, reachable once, not
/// poisoned; every Live table is reachable; each table's `live` count equals its valid
/// entries; every valid leaf is a model leaf; counters are consistent.
pub fn check_domain<F: FlushOps>(
    dom: &Domain<F>,
    model: &Model,
    samples: &[u64],
) -> Result<(), Divergence> {
    let p = params(dom, model)?;
    let w = walker(dom, &p);
    // The structure walk matches every leaf in the tables to a model leaf one to one, so
    // translating every leaf again would add nothing but time; a spread of them is
    // translated first, for the clearer message a wrong translation gives.
    let n = model.leaf_count();
    for leaf in model.leaves().step_by((n / FULL_CHECK_TRANSLATIONS).max(1)) {
        w.check_leaf(model, leaf)?;
    }
    for &iova in samples {
        w.check_iova(model, iova)?;
    }
    structure::check_structure(dom, &p, model)?;
    Ok(())
}

/// The per-op check of `[lo, hi)`: every leaf the tables hold there is exactly a model leaf
/// and vice versa (one in-order pass over the range's descriptors, malformed or poisoned
/// descriptors and links to non-Live tables included); the model leaves at both ends go
/// through the full translation (first, middle and last byte, and their unmapped
/// neighbours), and so do `samples`. No structure walk.
pub fn check_range<F: FlushOps>(
    dom: &Domain<F>,
    model: &Model,
    lo: u64,
    hi: u64,
    samples: &[u64],
) -> Result<(), Divergence> {
    let p = params(dom, model)?;
    let w = walker(dom, &p);
    if lo < hi {
        let first = model.leaf_at(lo);
        let last = model.leaf_at(hi - 1).filter(|l| Some(*l) != first);
        for leaf in first.into_iter().chain(last) {
            w.check_leaf(model, leaf)?;
        }
    }
    for &iova in samples {
        w.check_iova(model, iova)?;
    }
    let mut leaves = range::LeafMatch::new(model.leaves_overlapping(lo, hi), p.stage2);
    range::walk_range(dom, &p, lo, hi, &mut |f| leaves.found(f))?;
    leaves.finish()
}

/// Translates one address of `dom` through its device view (for other oracles and tools).
pub fn translate_domain<F: FlushOps>(
    dom: &Domain<F>,
    model: &Model,
    iova: u64,
) -> Result<Result<Translation, Fault>, Divergence> {
    let p = params(dom, model)?;
    let mem = dom.mem();
    Ok(translate(&p, dom.root(), iova, |pa| mem.read_device(pa)))
}
