//! How raw bytes decode into ops: a compact tagged layout rather than `arbitrary`'s derive,
//! which spends four bytes per variant. With the derive a map took about 25 bytes, and
//! libFuzzer, which lets inputs grow a few bytes at a time from an empty corpus, needed
//! some 20k executions before a map was followed by an unmap of the same page.
//!
//! An op is one byte (`byte % 7`, [`TAG_OP`]) and its operands. An operand's first byte
//! ([`Lead`]) below 0x80 is the common variant with that byte as its value (a pool index, a
//! legal page size index, a small count), so it costs one byte; 0x80..0xc0 is the second
//! variant (a live mapping, a power of two, a span); from 0xc0 the raw variant, whose eight
//! little-endian value bytes follow.
//!
//! The configuration in front of the ops is short or full ([`config`]): one byte, or a
//! marker and six.
//!
//! A zero byte decodes to the common case, since bytes past the end of the input read as
//! zero: op 0 is a map, operand 0 the first pool address, the granule, one page, and a zero
//! permission byte is read-write ([`PROT_ZERO`]). So eight bytes, a short configuration,
//! a map (six bytes) and one byte more, are a map and an unmap of the same page: libFuzzer
//! lets inputs grow to 8 bytes after about 1,300 executions from an empty corpus, and to 14
//! after 8,600 (qemu_diff, one run).

use arbitrary::{Arbitrary, Result, Unstructured};

use super::{Addr, ConfigChoice, Count, Op, Size};

/// Variant bytes of [`Op`], in declaration order (the encoder and `.ci/gen-seeds.py` write
/// them so).
pub const TAG_OP: [&str; 7] = [
    "map", "unmap", "lookup", "sync", "grace", "fail_nth", "clear",
];

/// A map's permission byte is XORed with this, so zero means read-write (a map without
/// either maps nothing).
pub const PROT_ZERO: u8 = 0b11;

/// First bytes of an operand from which on it is the second variant, then the raw one.
pub const LEAD_SECOND: u8 = 0x80;
pub const LEAD_RAW: u8 = 0xc0;

/// A first byte from this one on is followed by a full configuration.
pub const CONFIG_FULL: u8 = 0x80;

/// The configuration: a first byte below [`CONFIG_FULL`] is the format byte alone (every
/// other choice zero: 4K granule, IAS and OAS from the first pool entry, non-coherent,
/// tables at the default base, no packing), so a short input spends one byte on it; from
/// it on, the six bytes of [`ConfigChoice::from_bytes`] follow.
pub(super) fn config(u: &mut Unstructured) -> Result<ConfigChoice> {
    let b = u8::arbitrary(u)?;
    if b < CONFIG_FULL {
        Ok(ConfigChoice::from_bytes([b, 0, 0, 0, 0, 0]))
    } else {
        u.arbitrary()
    }
}

/// What an operand's first byte says.
enum Lead {
    /// The common variant; its value is the byte (below 0x80).
    Common(u8),
    /// The second variant; the byte's low six bits are its first value bits.
    Second(u8),
    /// Eight value bytes follow.
    Raw,
}

fn lead(u: &mut Unstructured) -> Result<Lead> {
    let b = u8::arbitrary(u)?;
    Ok(if b < LEAD_SECOND {
        Lead::Common(b)
    } else if b < LEAD_RAW {
        Lead::Second(b & 0x3f)
    } else {
        Lead::Raw
    })
}

impl<'a> Arbitrary<'a> for Addr {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match lead(u)? {
            Lead::Common(i) => Addr::Pool(i),
            Lead::Second(n) => Addr::Live {
                n,
                pages: u.arbitrary()?,
            },
            Lead::Raw => Addr::Raw(u.arbitrary()?),
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

impl<'a> Arbitrary<'a> for Size {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match lead(u)? {
            Lead::Common(i) => Size::Legal(i),
            Lead::Second(bits) => Size::Pow2(bits),
            Lead::Raw => Size::Raw(u.arbitrary()?),
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

impl<'a> Arbitrary<'a> for Count {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match lead(u)? {
            Lead::Common(n) => Count::Small(n),
            // Six bits from the lead byte and eight more: spans read nine (`Resolver::count`).
            Lead::Second(lo) => Count::Span(u16::from(lo) | u16::from(u8::arbitrary(u)?) << 6),
            Lead::Raw => Count::Raw(u.arbitrary()?),
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(9))
    }
}

impl<'a> Arbitrary<'a> for Op {
    fn arbitrary(u: &mut Unstructured<'a>) -> Result<Self> {
        Ok(match u8::arbitrary(u)? % TAG_OP.len() as u8 {
            0 => Op::Map {
                iova: u.arbitrary()?,
                pa: u.arbitrary()?,
                size: u.arbitrary()?,
                count: u.arbitrary()?,
                prot: u8::arbitrary(u)? ^ PROT_ZERO,
            },
            1 => Op::Unmap {
                iova: u.arbitrary()?,
                size: u.arbitrary()?,
                count: u.arbitrary()?,
            },
            2 => Op::Lookup {
                iova: u.arbitrary()?,
                offset: u.arbitrary()?,
            },
            3 => Op::Sync,
            4 => Op::Grace,
            5 => Op::FailNth(u.arbitrary()?),
            _ => Op::Clear,
        })
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (1, Some(1 + 4 * 9 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Input;

    fn ops(bytes: &[u8]) -> Vec<Op> {
        let mut raw = vec![0u8];
        raw.extend_from_slice(bytes);
        Input::arbitrary_take_rest(Unstructured::new(&raw))
            .unwrap()
            .ops
    }

    /// One byte is a read-write map of one granule page at the first pool address; one
    /// more (after the map's six bytes) an unmap of that page.
    #[test]
    fn zero_bytes_are_a_read_write_map_and_one_more_an_unmap() {
        match ops(&[0]).as_slice() {
            [Op::Map {
                iova: Addr::Pool(0),
                pa: Addr::Pool(0),
                size: Size::Legal(0),
                count: Count::Small(0),
                prot,
            }] => assert_eq!(*prot, PROT_ZERO),
            o => panic!("{o:?}"),
        }
        let mut two = vec![0u8; 6];
        two.push(1);
        match ops(&two).as_slice() {
            [Op::Map { .. }, Op::Unmap {
                iova: Addr::Pool(0),
                size: Size::Legal(0),
                count: Count::Small(0),
            }] => {}
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn a_configuration_is_one_byte_or_a_marker_and_six() {
        let short = Input::arbitrary_take_rest(Unstructured::new(&[0x41, 1])).unwrap();
        assert_eq!(short.config.to_bytes(), [0x41, 0, 0, 0, 0, 0]);
        assert!(matches!(short.ops.as_slice(), [Op::Unmap { .. }]));
        let full = [CONFIG_FULL, 3, 1, 2, 0x81, 0x0d, 0x07, 2];
        let input = Input::arbitrary_take_rest(Unstructured::new(&full)).unwrap();
        assert_eq!(input.config.to_bytes(), [3, 1, 2, 0x81, 0x0d, 0x07]);
        assert_eq!((input.config.window, input.config.host_page), (6, 3));
        assert!(matches!(input.ops.as_slice(), [Op::Lookup { .. }]));
    }

    #[test]
    fn every_tag_byte_picks_a_variant_and_operands_follow_in_order() {
        let seen: std::collections::BTreeSet<_> = (0..=255u8)
            .map(|b| {
                format!("{:?}", ops(&[b])[0])
                    .split([' ', '('])
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(seen.len(), TAG_OP.len(), "{seen:?}");
        // unmap, Live { n: 7, pages: -2 }, Pow2(21), Raw count 0x0102.
        let bytes = [1, 0x87, 0xfe, 0x95, 0xc0, 2, 1, 0, 0, 0, 0, 0, 0];
        match ops(&bytes).as_slice() {
            [Op::Unmap {
                iova: Addr::Live { n: 7, pages: -2 },
                size: Size::Pow2(21),
                count: Count::Raw(0x0102),
            }] => {}
            o => panic!("{o:?}"),
        }
        // map: Raw address, Pool(5), Legal(1), a span of nine bits, prot r.
        let mut bytes = vec![0, 0xff];
        bytes.extend_from_slice(&0x1234_5000u64.to_le_bytes());
        bytes.extend_from_slice(&[5, 1, 0x80 | 0x15, 0x3, 1 ^ PROT_ZERO]);
        match ops(&bytes).as_slice() {
            [Op::Map {
                iova: Addr::Raw(0x1234_5000),
                pa: Addr::Pool(5),
                size: Size::Legal(1),
                count: Count::Span(0xd5),
                prot: 1,
            }] => {}
            o => panic!("{o:?}"),
        }
    }
}
