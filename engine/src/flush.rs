//! TLB maintenance as the engine requests it. The engine calls these exactly where hardware
//! would need them; what a sink does with them (nothing, a log, SMMU commands) is its business.

/// A pending leaf invalidation: the range `[start, end]` of pages of one size removed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Gather {
    pub start: u64,
    /// Inclusive end; `end < start` means empty.
    pub end: u64,
    pub pgsize: u64,
}

impl Gather {
    pub const fn new() -> Gather {
        Gather {
            start: u64::MAX,
            end: 0,
            pgsize: 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// Whether `[iova, iova + size)` would leave a gap to (or not touch) the gathered range.
    fn is_disjoint(&self, iova: u64, size: u64) -> bool {
        let end = iova + size - 1;
        !self.is_empty()
            && (end.saturating_add(1) < self.start || iova > self.end.saturating_add(1))
    }
}

/// Flush callbacks, as io-pgtable's `iommu_flush_ops`.
pub trait FlushOps {
    /// Invalidate everything of this domain.
    fn flush_all(&mut self);
    /// Invalidate leaf and walk-cache entries of `[iova, iova + size)`, before tables there are freed.
    fn flush_walk(&mut self, iova: u64, size: u64, granule: u64);
    /// Invalidate the leaves gathered so far (Leaf=1, granule = `gather.pgsize`) and wait.
    fn sync(&mut self, gather: &Gather);

    /// Add one removed leaf to `gather`, syncing first when it would become disjoint or
    /// change page size (as `iommu_iotlb_gather_add_page`).
    #[inline]
    fn add_page(&mut self, gather: &mut Gather, iova: u64, size: u64) {
        if !gather.is_empty() && (gather.pgsize != size || gather.is_disjoint(iova, size)) {
            self.sync(gather);
            *gather = Gather::new();
        }
        gather.pgsize = size;
        gather.start = gather.start.min(iova);
        gather.end = gather.end.max(iova + size - 1);
    }
}

/// A sink that does nothing: for benchmarks and for domains whose TLB is not observed.
#[derive(Clone, Copy, Debug, Default)]
pub struct NullFlush;

impl FlushOps for NullFlush {
    #[inline(always)]
    fn flush_all(&mut self) {}
    #[inline(always)]
    fn flush_walk(&mut self, _iova: u64, _size: u64, _granule: u64) {}
    #[inline(always)]
    fn sync(&mut self, _gather: &Gather) {}
    #[inline(always)]
    fn add_page(&mut self, _gather: &mut Gather, _iova: u64, _size: u64) {}
}

/// One recorded flush request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlushEvent {
    All,
    /// Walk invalidation (Leaf=0) of `[iova, iova + size)`.
    Walk {
        iova: u64,
        size: u64,
        granule: u64,
    },
    /// Leaf invalidation (Leaf=1) of `[start, end]` at `pgsize`.
    Leaves {
        start: u64,
        end: u64,
        pgsize: u64,
    },
}

/// Records every request, in order, for the oracles.
#[derive(Clone, Debug, Default)]
pub struct FlushLog {
    pub events: Vec<FlushEvent>,
}

impl FlushOps for FlushLog {
    fn flush_all(&mut self) {
        self.events.push(FlushEvent::All);
    }
    fn flush_walk(&mut self, iova: u64, size: u64, granule: u64) {
        self.events.push(FlushEvent::Walk {
            iova,
            size,
            granule,
        });
    }
    fn sync(&mut self, gather: &Gather) {
        if !gather.is_empty() {
            self.events.push(FlushEvent::Leaves {
                start: gather.start,
                end: gather.end,
                pgsize: gather.pgsize,
            });
        }
    }
}
