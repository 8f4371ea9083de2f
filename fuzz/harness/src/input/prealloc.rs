//! The op language of the `prealloc` target: jobs, reservations and plain map/unmap
//! interleaved over a sparse address space (interesting bases at table boundaries, plus
//! a page offset). A separate input type, so the `pagetable` corpus decodes unchanged.

use arbitrary::{Arbitrary, Unstructured};
use ptfuzz_engine::Prot;
use ptfuzz_oracles::Model;

use super::{ConfigChoice, Pools, MAX_OPS};
use crate::trace::Command;

/// Granule pages per range at most (ranges stay cheap to count and walk).
const MAX_RANGE_PAGES: u64 = 2048;

/// A whole `prealloc` input.
#[derive(Clone, Debug)]
pub struct PreallocInput {
    pub config: ConfigChoice,
    pub ops: Vec<POp>,
}

impl<'a> Arbitrary<'a> for PreallocInput {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Self::arbitrary_take_rest(Unstructured::new(u.bytes(u.len())?))
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        let config = u.arbitrary()?;
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            ops.push(u.arbitrary()?);
        }
        Ok(PreallocInput { config, ops })
    }
}

/// Where: a base from the pool and a signed page offset from it.
#[derive(Arbitrary, Clone, Copy, Debug)]
pub struct Spot {
    pub base: u8,
    pub pages: i16,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
pub enum POp {
    Prepare {
        job: u8,
        at: Spot,
        pages: u16,
    },
    /// Run a job over part of its range (`offset`, `pages` in granules), with the next
    /// larger page size when `big`, or shifted past its range when `outside`.
    Run {
        job: u8,
        offset: u16,
        pages: u16,
        big: bool,
        outside: bool,
    },
    Cleanup {
        job: u8,
    },
    Reserve {
        at: Spot,
        pages: u16,
    },
    /// Drop the n-th reservation held (or a range never reserved, when `bogus`).
    Unreserve {
        n: u8,
        bogus: bool,
    },
    Map {
        at: Spot,
        pages: u8,
        big: bool,
    },
    Unmap {
        at: Spot,
        pages: u8,
        big: bool,
    },
    Lookup {
        at: Spot,
    },
    Grace,
    FailNth(u8),
    /// Map (bind) the whole n-th reservation with granule pages.
    MapReserved {
        n: u8,
    },
    /// Unmap (unbind) the whole n-th reservation in one call.
    UnmapReserved {
        n: u8,
    },
}

/// Turns `prealloc` ops into commands against the model's state.
pub struct PreallocResolver {
    pub pools: Pools,
    pub dom: crate::trace::Name,
}

impl PreallocResolver {
    fn granule(&self) -> u64 {
        self.pools.page_sizes[0]
    }

    fn addr(&self, s: Spot) -> u64 {
        let g = self.granule();
        let base = self.pools.iovas[s.base as usize % self.pools.iovas.len()];
        let a = base.wrapping_add((s.pages as i64 as u64).wrapping_mul(g)) & !(g - 1);
        a.min(self.pools.ia_size - g)
    }

    fn pages(&self, n: u64) -> u64 {
        1 + n % MAX_RANGE_PAGES
    }

    /// The page size for a map: the granule, or the next leaf size.
    fn pgsize(&self, big: bool) -> u64 {
        let s = &self.pools.page_sizes;
        if big && s.len() > 1 {
            s[1]
        } else {
            s[0]
        }
    }

    pub fn command(&self, op: &POp, model: &Model) -> Command {
        let dom = self.dom.clone();
        let g = self.granule();
        let rw = Prot::READ | Prot::WRITE;
        match *op {
            POp::Prepare { job, at, pages } => {
                let iova = self.addr(at);
                let size = (self.pages(pages as u64) * g).min(self.pools.ia_size - iova);
                Command::JobPrepare {
                    dom,
                    job: (job % 8) as u32,
                    iova,
                    size,
                }
            }
            POp::Run {
                job,
                offset,
                pages,
                big,
                outside,
            } => {
                // Mostly a pending job that has not run yet (the n-th), else any id.
                let ready: Vec<u32> = model
                    .jobs()
                    .filter(|(_, j)| !j.ran)
                    .map(|(id, _)| id)
                    .collect();
                let job = match ready.len() {
                    0 => (job % 8) as u32,
                    n if job < 0xf0 => ready[job as usize % n],
                    _ => (job % 8) as u32,
                };
                let (lo, size) = model
                    .jobs()
                    .find(|(j, _)| *j == job)
                    .map_or((0, g), |(_, j)| (j.iova, j.size));
                let pgsize = self.pgsize(big);
                let mut iova = lo + (offset as u64 * g) % size;
                if outside {
                    iova = iova.wrapping_add(size);
                }
                iova &= !(pgsize - 1);
                let count = (1 + (pages as u64 * g) % size / pgsize).min(MAX_RANGE_PAGES);
                Command::JobRun {
                    dom,
                    job,
                    iova,
                    pa: iova & ((1 << 30) - 1),
                    pgsize,
                    count,
                    prot: rw,
                }
            }
            POp::Cleanup { job } => {
                // Mostly the n-th pending job (run or not), sometimes any id.
                let pending: Vec<u32> = model.jobs().map(|(id, _)| id).collect();
                let job = match pending.len() {
                    n if n > 0 && job < 0xf0 => pending[job as usize % n],
                    _ => (job % 8) as u32,
                };
                Command::JobCleanup { dom, job }
            }
            POp::Reserve { at, pages } => {
                let iova = self.addr(at);
                let size = (self.pages(pages as u64) * g).min(self.pools.ia_size - iova);
                Command::Reserve { dom, iova, size }
            }
            POp::Unreserve { n, bogus } => {
                let held: Vec<(u64, u64)> = model.reservations().map(|(r, _)| r).collect();
                let (iova, size) = if bogus || held.is_empty() {
                    (self.addr(Spot { base: n, pages: 0 }), g)
                } else {
                    held[n as usize % held.len()]
                };
                Command::Unreserve { dom, iova, size }
            }
            POp::Map { at, pages, big } => {
                let pgsize = self.pgsize(big);
                let iova = self.addr(at) & !(pgsize - 1);
                Command::Map {
                    dom,
                    iova,
                    pa: iova & ((1 << 30) - 1),
                    pgsize,
                    count: 1 + pages as u64 % 64,
                    prot: rw,
                }
            }
            POp::Unmap { at, pages, big } => {
                let pgsize = self.pgsize(big);
                let iova = self.addr(at) & !(pgsize - 1);
                Command::Unmap {
                    dom,
                    iova,
                    pgsize,
                    count: 1 + pages as u64 % 64,
                }
            }
            POp::Lookup { at } => Command::Lookup {
                dom,
                iova: self.addr(at),
            },
            POp::MapReserved { n } | POp::UnmapReserved { n } => {
                let held: Vec<(u64, u64)> = model.reservations().map(|(r, _)| r).collect();
                let (iova, size) = match held.len() {
                    0 => (self.addr(Spot { base: n, pages: 0 }), g),
                    k => held[n as usize % k],
                };
                if let POp::MapReserved { .. } = op {
                    Command::Map {
                        dom,
                        iova,
                        pa: iova & ((1 << 30) - 1),
                        pgsize: g,
                        count: size / g,
                        prot: rw,
                    }
                } else {
                    Command::Unmap {
                        dom,
                        iova,
                        pgsize: g,
                        count: size / g,
                    }
                }
            }
            POp::Grace => Command::Grace { dom },
            POp::FailNth(n) => Command::FailNth {
                dom,
                n: (n % 4) as u64,
            },
        }
    }
}
