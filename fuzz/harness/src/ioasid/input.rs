//! The op language of the `ioasid` target. Decoded densely like the page-table target's
//! (`arbitrary_take_rest`: a fixed header, then ops until the bytes run out), so libFuzzer,
//! AFL and bolero files carry over.

use arbitrary::{Arbitrary, Unstructured};
use ptfuzz_engine::ioasid::Behaviour;

/// At most this many ops run per input.
pub const MAX_IO_OPS: usize = 64;

/// A whole input: the scripts of the three custom allocators (ops ids 1..=3) and the ops.
#[derive(Clone, Debug)]
pub struct IoasidInput {
    pub scripts: [Script; 3],
    pub ops: Vec<IoOp>,
}

impl<'a> Arbitrary<'a> for IoasidInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let scripts = u.arbitrary()?;
        let n = u.arbitrary_len::<IoOp>()?.min(MAX_IO_OPS);
        let ops = (0..n)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        Ok(IoasidInput { scripts, ops })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        let scripts = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_IO_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(IoasidInput { scripts, ops })
    }
}

/// A custom allocator's script, packed: `v % 5` behaviours (0 = always fresh), then the
/// behaviours as base-5 digits of `v / 5`.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script(pub u16);

impl Script {
    pub fn behaviours(self) -> Vec<Behaviour> {
        let len = self.0 % 5;
        let mut rest = self.0 / 5;
        (0..len)
            .map(|_| {
                let b = Behaviour::ALL[(rest % 5) as usize];
                rest /= 5;
                b
            })
            .collect()
    }
}

/// Which ID an op names, by the byte's range: mostly one the model knows about.
/// `0..=159` the n-th outstanding ID, `160..=207` the n-th bound one (else outstanding),
/// `208..=239` a small ID (0..=11, what the small ranges hand out), `240..` an edge
/// (`INVALID_IOASID`, just below it, the 20-bit PASID limit). With nothing outstanding, a
/// small ID.
#[derive(Arbitrary, Clone, Copy, Debug, PartialEq, Eq)]
pub struct IdPick(pub u8);

/// One op. Decoded from a selector byte (`% 32`, weighted: allocs most often, page-table
/// ops least) and then the variant's fields in order; see `impl Arbitrary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoOp {
    Alloc {
        set: u8,
        range: u8,
        data: u8,
    },
    Free {
        id: IdPick,
    },
    Find {
        id: IdPick,
        set: u8,
        getter: bool,
    },
    SetData {
        id: IdPick,
        data: u8,
    },
    Register {
        ops: u8,
        private: u8,
    },
    /// Mostly a registered (ops, private) pair.
    Unregister {
        pick: u8,
    },
    Bind {
        id: IdPick,
        dom: u8,
    },
    Unbind {
        id: IdPick,
    },
    Translate {
        id: IdPick,
        page: u8,
    },
    Map {
        dom: u8,
        page: u8,
        count: u8,
    },
    Unmap {
        dom: u8,
        page: u8,
        count: u8,
    },
}

/// Selector `% 32` → variant: the weights of the op mix (keep `.ci/gen-ioasid-seeds.py`
/// in step).
pub const SELECTOR: [(u8, &str); 11] = [
    (7, "Alloc"),
    (4, "Free"),
    (3, "Find"),
    (1, "SetData"),
    (3, "Register"),
    (3, "Unregister"),
    (3, "Bind"),
    (2, "Unbind"),
    (3, "Translate"),
    (2, "Map"),
    (1, "Unmap"),
];

impl<'a> Arbitrary<'a> for IoOp {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut k = u.arbitrary::<u8>()? % 32;
        let mut which = 0;
        while k >= SELECTOR[which].0 {
            k -= SELECTOR[which].0;
            which += 1;
        }
        Ok(match which {
            0 => IoOp::Alloc {
                set: u.arbitrary()?,
                range: u.arbitrary()?,
                data: u.arbitrary()?,
            },
            1 => IoOp::Free { id: u.arbitrary()? },
            2 => IoOp::Find {
                id: u.arbitrary()?,
                set: u.arbitrary()?,
                getter: u.arbitrary()?,
            },
            3 => IoOp::SetData {
                id: u.arbitrary()?,
                data: u.arbitrary()?,
            },
            4 => IoOp::Register {
                ops: u.arbitrary()?,
                private: u.arbitrary()?,
            },
            5 => IoOp::Unregister {
                pick: u.arbitrary()?,
            },
            6 => IoOp::Bind {
                id: u.arbitrary()?,
                dom: u.arbitrary()?,
            },
            7 => IoOp::Unbind { id: u.arbitrary()? },
            8 => IoOp::Translate {
                id: u.arbitrary()?,
                page: u.arbitrary()?,
            },
            9 => IoOp::Map {
                dom: u.arbitrary()?,
                page: u.arbitrary()?,
                count: u.arbitrary()?,
            },
            _ => IoOp::Unmap {
                dom: u.arbitrary()?,
                page: u.arbitrary()?,
                count: u.arbitrary()?,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_weights_cover_every_byte() {
        assert_eq!(SELECTOR.iter().map(|(w, _)| *w as u32).sum::<u32>(), 32);
        let op = |b: &[u8]| IoOp::arbitrary(&mut Unstructured::new(b)).unwrap();
        assert!(matches!(
            op(&[0, 1, 2, 3]),
            IoOp::Alloc {
                set: 1,
                range: 2,
                data: 3
            }
        ));
        assert!(matches!(op(&[7, 9]), IoOp::Free { id: IdPick(9) }));
        assert!(matches!(
            op(&[31, 1, 2, 3]),
            IoOp::Unmap {
                dom: 1,
                page: 2,
                count: 3
            }
        ));
        assert!(
            matches!(op(&[32 + 30, 1, 2, 3]), IoOp::Map { .. }),
            "selector is % 32"
        );
    }

    #[test]
    fn scripts_unpack() {
        assert!(Script(0).behaviours().is_empty());
        assert_eq!(Script(1 + 5 * 2).behaviours(), vec![Behaviour::OutOfRange]);
        assert_eq!(
            Script(3 + 5 * (1 + 5 * 4)).behaviours(),
            vec![Behaviour::Duplicate, Behaviour::Fail, Behaviour::Fresh]
        );
    }
}
