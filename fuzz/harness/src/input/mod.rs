//! The op language: what `arbitrary` decodes fuzz bytes into. Ops name addresses and sizes
//! abstractly (a pool of interesting values, the n-th live mapping, a raw number) and are
//! resolved against the model's state when they run, so most ops hit table edges or live
//! mappings instead of empty space. The resolved commands are the trace.

mod bytes;
mod pools;
pub mod prealloc;
pub(crate) mod resolve;

use arbitrary::{Arbitrary, Unstructured};

pub use bytes::{CONFIG_FULL, LEAD_RAW, LEAD_SECOND, PROT_ZERO, TAG_OP};
pub use pools::Pools;
pub(crate) use resolve::Resolver;
pub use resolve::{resolve_config, CONCAT_MAX_BIT};

/// At most this many ops run per input (longer inputs are cut).
pub const MAX_OPS: usize = 64;
/// At most this many pages per map or unmap, so one input stays cheap.
pub const MAX_PAGES: u64 = 1024;

/// A whole fuzz input: one domain and the ops run on it.
#[derive(Clone, Debug)]
pub struct Input {
    pub config: ConfigChoice,
    pub ops: Vec<Op>,
}

/// The configuration ([`bytes::config`]), then ops decoded densely, one after another until
/// the bytes run out (arbitrary's own `Vec` spends a continue-bit per element, so random
/// bytes would carry about one op).
impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = bytes::config(u)?;
        let n = u.arbitrary_len::<Op>()?.min(MAX_OPS);
        let ops = (0..n)
            .map(|_| u.arbitrary())
            .collect::<arbitrary::Result<_>>()?;
        Ok(Input { config, ops })
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = bytes::config(&mut u)?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(Input { config, ops })
    }
}

/// Domain configuration; always resolved to one the engine must accept.
#[derive(Clone, Copy, Debug)]
pub struct ConfigChoice {
    /// Picks the format (modulo their number); bit 6 (`CONCAT_MAX_BIT`) asks stage 2 for `concat=max`.
    pub format: u8,
    pub granule: u8,
    pub ias: u8,
    pub oas: u8,
    pub coherent: bool,
    pub custom_alloc: bool,
    /// Where the table frames live: below [`TIGHT_WINDOW`], at the default base with room
    /// to spare; from it, in the last 16 (or 32) frames below 2^OAS, where frames run out
    /// and freed ones must be reused (issue 13: memory pressure).
    pub window: u8,
    /// The host allocation page (`hostpage=`): 0 and 1 the granule, 2 16K, 3 64K (modulo
    /// 4; a page smaller than the granule is the granule). Tables smaller than the page
    /// are packed into it.
    pub host_page: u8,
}

impl ConfigChoice {
    pub fn from_bytes([format, granule, ias, oas, memory, custom]: [u8; 6]) -> ConfigChoice {
        ConfigChoice {
            format,
            granule,
            ias,
            oas,
            coherent: memory & 1 != 0,
            custom_alloc: custom & 1 != 0,
            window: (memory >> 1) & 7,
            host_page: (custom >> 1) & 3,
        }
    }

    /// The six bytes [`ConfigChoice::from_bytes`] reads back as this choice.
    pub fn to_bytes(&self) -> [u8; 6] {
        [
            self.format,
            self.granule,
            self.ias,
            self.oas,
            u8::from(self.coherent) | (self.window << 1),
            u8::from(self.custom_alloc) | (self.host_page << 1),
        ]
    }
}

/// [`ConfigChoice::window`] values from this one on place the tables in a tight window.
pub const TIGHT_WINDOW: u8 = 6;

/// Six bytes, as a derived impl of the first six fields would read them (so corpora stay
/// valid), except that the window comes from the coherent byte's bits 1-3 and the host page
/// from the custom byte's bits 1-2, which a `bool` ignores.
impl<'a> Arbitrary<'a> for ConfigChoice {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(ConfigChoice::from_bytes(u.arbitrary()?))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (6, Some(6))
    }
}

/// An address: mostly from the pool of interesting values, or the n-th live mapping
/// (as syzkaller's iommufd descriptions do) plus a page offset, rarely anything at all.
#[derive(Clone, Copy, Debug)]
pub enum Addr {
    Pool(u8),
    Live { n: u8, pages: i8 },
    Raw(u64),
}

/// A page size: mostly one the domain supports, sometimes any power of two or anything.
#[derive(Clone, Copy, Debug)]
pub enum Size {
    Legal(u8),
    Pow2(u8),
    Raw(u64),
}

/// A page count: mostly small, sometimes enough to cross a table, rarely anything.
#[derive(Clone, Copy, Debug)]
pub enum Count {
    Small(u8),
    Span(u16),
    Raw(u64),
}

#[derive(Clone, Copy, Debug)]
pub enum Op {
    Map {
        iova: Addr,
        pa: Addr,
        size: Size,
        count: Count,
        prot: u8,
    },
    Unmap {
        iova: Addr,
        size: Size,
        count: Count,
    },
    Lookup {
        iova: Addr,
        offset: u32,
    },
    Sync,
    Grace,
    FailNth(u8),
    Clear,
}
