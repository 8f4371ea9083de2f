//! Crash signatures: one short string per bug, so a campaign that hits the same bug ten
//! thousand times keeps one trace. A signature names the failure variant, the oracle (and
//! the gist of what it saw), and the command that failed, but no addresses or sizes: those
//! differ from input to input while the bug stays the same.

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

use crate::outcome::Outcome;
use crate::replay::FailureKind;
use crate::trace::Expect;

/// Words of an oracle's message kept in a signature: enough to tell "output address
/// differs" from "leak", few enough that details of the state do not split one bug.
const ORACLE_WORDS: usize = 5;
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
        FailureKind::Oracle(d) => format!(
            "{word}: oracle {}: {}",
            d.oracle,
            gist(&d.what, ORACLE_WORDS)
        ),
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

#[cfg(test)]
mod tests {
    use super::*;
    use ptfuzz_oracles::Divergence;

    #[test]
    fn numbers_do_not_split_a_bug() {
        let a = FailureKind::Oracle(Divergence::new(
            "walker",
            "iova 0x1000: output address differs: expected pa 0x5",
        ));
        let b = FailureKind::Oracle(Divergence::new(
            "walker",
            "iova 0x7000: output address differs: expected pa 0x9",
        ));
        assert_eq!(signature(&a, "map"), signature(&b, "map"));
        assert_eq!(
            signature(&a, "map"),
            "map: oracle walker: iova output address differs: expected"
        );
        assert_ne!(signature(&a, "map"), signature(&a, "unmap"));
        assert_eq!(short_hash("x").len(), 12);
        assert_eq!(quietly(|| panic!("boom {}", 3)).unwrap_err(), "boom 3");
        assert_eq!(
            panic_signature("index 3 out of range\nmore"),
            "panic: index out of range"
        );
    }
}
