//! Crash signatures: one short string per bug, so a campaign that hits the same bug ten
//! thousand times keeps one trace. A signature names the command that failed and the failure:
//! for an oracle, its finding's kind (`walker/leaf-output-address`), never words of its
//! message; for engine against model, the shapes of both outcomes; but no addresses or
//! sizes: those differ from input to input while the bug stays the same. Campaigns prefix
//! the target.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::Expect;

/// Words of a panic message kept.
const PANIC_WORDS: usize = 10;

/// The signature of a failure of `word` (the failing command's word, `map`, `unmap`, …).
pub fn signature(kind: &FailureKind, word: &str) -> String {
    match kind {
        FailureKind::Divergence { engine, model, .. } => {
            format!(
                "{word}: divergence: engine {}, model {}",
                shape(engine),
                shape(model)
            )
        }
        FailureKind::Mismatch { expected, actual } => {
            format!(
                "{word}: mismatch: expected {}, got {}",
                shape_of(expected),
                shape(actual)
            )
        }
        FailureKind::Oracle(d) => format!("{word}: oracle {}", d.kind()),
        FailureKind::Panic { who, msg } => {
            format!("{word}: {who} panicked: {}", gist(msg, PANIC_WORDS))
        }
        FailureKind::RefusedDomain { .. } => format!("{word}: refused domain"),
        FailureKind::Undeclared(_) => format!("{word}: undeclared domain"),
        FailureKind::IoasidDivergence(d) => format!(
            "{word}: divergence: engine {} {:?}, model {} {:?} by {:?}",
            shape(&d.engine),
            d.engine.ioasid_reason(),
            shape(&d.model),
            d.model.ioasid_reason(),
            d.rule
        ),
    }
}

/// The signature of a panic that escaped the executor (no failing command known).
pub fn panic_signature(msg: &str) -> String {
    format!("panic: {}", gist(msg, PANIC_WORDS))
}

/// The kind of an outcome without its numbers: `ok`, `err=exists`, `pa`, `none`.
fn shape(o: &Outcome) -> String {
    match o {
        Outcome::Lookup(Some(_)) => "pa".into(),
        Outcome::Lookup(None) => "none".into(),
        o => shape_of(&o.facts()),
    }
}

fn shape_of(e: &Expect) -> String {
    match (e.err, e.pa, e.none) {
        (Some(k), _, _) => format!("err={k}"),
        (_, Some(_), _) => "pa".into(),
        (_, _, true) => "none".into(),
        _ => "ok".into(),
    }
}

/// The first line of `text`, without any word that carries a digit (addresses, sizes,
/// indices), cut to `words` words.
fn gist(text: &str, words: usize) -> String {
    let first = text.lines().next().unwrap_or("");
    let kept: Vec<&str> = first
        .split_whitespace()
        .filter(|w| !w.bytes().any(|b| b.is_ascii_digit()))
        .take(words)
        .collect();
    kept.join(" ")
        .trim_end_matches([':', ',', ';', '.'])
        .to_string()
}

/// A stable short hash of a signature, for file names (FNV-1a: std's hasher may change
/// between Rust releases, and file names must not).
pub fn short_hash(sig: &str) -> String {
    let h = sig.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:012x}", h >> 16)
}

thread_local! {
    /// Set while this thread runs inputs: their panics are crashes to record, not noise.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, returning its panic message instead of unwinding. The panic hook stays silent
/// for panics caught here (a campaign may see thousands) but only on this thread, so a test
/// running beside it still reports its own panics.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info)
            }
        }));
    });
    let was = QUIET.with(|q| q.replace(true));
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    r.map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".into())
    })
}

/// The finding kind a signature names, if an oracle's finding made it (signatures are ours,
/// and only kinds an oracle declares are returned).
pub fn kind_of_signature(sig: &str) -> Option<&'static str> {
    let (_, kind) = sig.rsplit_once(": oracle ")?;
    ptfuzz_oracles::OracleId::ALL
        .iter()
        .flat_map(|o| o.kinds())
        .find(|k| **k == kind)
        .copied()
}

/// The finding kind of a failure, when an oracle reported it.
pub fn finding_kind(kind: &FailureKind) -> Option<&'static str> {
    match kind {
        FailureKind::Oracle(d) => Some(d.kind()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ptfuzz_oracles::finding::{ModelLeaf, TlbFinding, WalkerFinding};
    use ptfuzz_oracles::walker::{LeafAttrs, S1Attrs, Translation};
    use ptfuzz_oracles::Divergence;

    fn oracle(f: impl Into<ptfuzz_oracles::Finding>) -> FailureKind {
        FailureKind::Oracle(Divergence::new(f))
    }

    fn bbm_in_place(iova: u64, old: u64) -> FailureKind {
        oracle(TlbFinding::BbmInPlace {
            op: 3,
            iova,
            level: 2,
            old,
            new: 0x4020_0701,
            slot: 0x4000_2008,
            seq: 9,
        })
    }

    #[test]
    fn one_kind_at_other_addresses_is_one_bug() {
        let a = bbm_in_place(0x20_0000, 0x4000_3003);
        let b = bbm_in_place(0x7fe0_0000, 0x4000_9003);
        assert_ne!(a.to_string(), b.to_string());
        assert_eq!(signature(&a, "map"), signature(&b, "map"));
        assert_eq!(
            signature(&a, "map"),
            "map: oracle tlb/bbm-replaced-in-place"
        );
        assert_ne!(signature(&a, "map"), signature(&a, "unmap"));
    }

    /// Two different break-before-make bugs whose messages start with the same words: the
    /// old signature (the first words of the message, digits dropped) merged them.
    #[test]
    fn kinds_whose_messages_start_alike_are_two_bugs() {
        let in_place = bbm_in_place(0x20_0000, 0x4000_3003);
        let not_invalidated = oracle(TlbFinding::BbmNotInvalidated {
            op: 3,
            iova: 0x20_0000,
            level: 2,
            old: 0x4000_3003,
            new: 0x4020_0701,
            slot: 0x4000_2008,
            broken_at: 4,
            seq: 9,
        });
        let (a, b) = (in_place.to_string(), not_invalidated.to_string());
        assert_eq!(gist(&a, 8), gist(&b, 8), "{a}\n{b}");
        assert_ne!(
            signature(&in_place, "map"),
            signature(&not_invalidated, "map")
        );
        // Two walker findings alike up to the word that names what differs.
        let t = Translation {
            pa: 0x9000,
            level: 3,
            size: 0x1000,
            leaf_iova: 0x1000,
            attrs: LeafAttrs::S1(S1Attrs::default()),
            desc_pa: 0x4000_3008,
            desc: 0x9703,
            table_extra: 0,
        };
        let leaf = ModelLeaf::new((0x1000, 0x5000, 0x1000, ptfuzz_engine::prot::Prot::RW));
        let attrs = LeafAttrs::S1(S1Attrs::default());
        let addr = oracle(WalkerFinding::LeafOutputAddress {
            iova: 0x1000,
            expected_pa: 0x5000,
            leaf,
            expected_attrs: attrs,
            actual: t,
        });
        let size = oracle(WalkerFinding::LeafSize {
            iova: 0x1000,
            expected_pa: 0x5000,
            leaf,
            expected_attrs: attrs,
            actual: t,
        });
        assert_ne!(signature(&addr, "map"), signature(&size, "map"));
        assert_eq!(finding_kind(&addr), Some("walker/leaf-output-address"));
        let sig = format!("pagetable/{}", signature(&size, "unmap"));
        assert_eq!(kind_of_signature(&sig), Some("walker/leaf-size"));
        assert_eq!(kind_of_signature("map: oracle walker/no-such-kind"), None);
        assert_eq!(
            kind_of_signature("map: divergence: engine ok, model none"),
            None
        );
    }

    #[test]
    fn panics_keep_their_gist() {
        assert_eq!(short_hash("x").len(), 12);
        assert_eq!(quietly(|| panic!("boom {}", 3)).unwrap_err(), "boom 3");
        assert_eq!(
            panic_signature("index 3 out of range\nmore"),
            "panic: index out of range"
        );
    }
}
