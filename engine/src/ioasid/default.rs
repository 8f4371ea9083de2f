//! The default allocator: always present (rule 1), owns its own ID space, and hands out the
//! lowest free ID in `[min, max]`.

use std::collections::BTreeMap;

use super::IdData;

/// Lowest key in `[min, max]` absent from `space`, if any. Shared by the default allocator
/// and by nothing else (custom answers are validated, never computed, by the framework).
pub(crate) fn lowest_free<V>(space: &BTreeMap<u32, V>, min: u32, max: u32) -> Option<u32> {
    let mut candidate = min as u64;
    for &taken in space.range(min..=max).map(|(k, _)| k) {
        if taken as u64 == candidate {
            candidate += 1;
        } else {
            break;
        }
    }
    (candidate <= max as u64).then_some(candidate as u32)
}

#[derive(Debug, Default)]
pub(crate) struct DefaultAllocator {
    pub(crate) space: BTreeMap<u32, IdData>,
}

impl DefaultAllocator {
    pub(crate) fn alloc(&mut self, min: u32, max: u32, data: IdData) -> Option<u32> {
        let id = lowest_free(&self.space, min, max)?;
        self.space.insert(id, data);
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_skips_taken_and_respects_bounds() {
        let mut m = BTreeMap::new();
        assert_eq!(lowest_free(&m, 3, 5), Some(3));
        m.insert(3u32, ());
        m.insert(4, ());
        assert_eq!(lowest_free(&m, 3, 5), Some(5));
        m.insert(5, ());
        assert_eq!(lowest_free(&m, 3, 5), None);
        assert_eq!(lowest_free(&m, 0, 5), Some(0));
        assert_eq!(
            lowest_free(&m, u32::MAX - 1, u32::MAX - 1),
            Some(u32::MAX - 1)
        );
    }
}
