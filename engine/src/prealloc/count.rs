//! The worst-case table count of a map, for any format, granule and start level.

use crate::geometry::Geometry;

/// Tables a map of `[iova, iova + size)` can need in the worst case: whatever the tree
/// looks like when the job finally runs, it needs at most one table per level for every
/// span of that level's tables the range touches, from the level below the root down to
/// the last level (the smallest page). The root always exists and is not counted.
///
/// For a 4K granule with 48-bit input this is the seeds' formula: the 512G, 1G and 2M
/// regions the range touches. `size` must be non-zero and the range must not wrap.
pub fn worst_case_tables(geo: &Geometry, iova: u64, size: u64) -> u64 {
    let last = iova + (size - 1);
    (geo.start_level..geo.last_level)
        .map(|parent| {
            // A table at level parent + 1 spans one entry of its parent.
            let shift = geo.shift(parent);
            (last >> shift) - (iova >> shift) + 1
        })
        .sum()
}
