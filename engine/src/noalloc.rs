//! No-allocate sections: the engine marks the stretches of code that run where allocation is
//! not allowed (a prepared job's map, a map or unmap inside a reserved range), so a
//! global-allocator guard installed by a fuzz binary can flag any heap allocation made there.
//! The engine itself stays allocator-agnostic: this is only a thread-local flag.

use std::cell::Cell;

thread_local! {
    static DEPTH: Cell<u32> = const { Cell::new(0) };
    static PAUSED: Cell<u32> = const { Cell::new(0) };
}

/// Whether the current thread is inside a no-allocate section (and not in instrumentation
/// that paused it).
#[inline]
pub fn active() -> bool {
    DEPTH.try_with(|d| d.get() > 0).unwrap_or(false)
        && PAUSED.try_with(|p| p.get() == 0).unwrap_or(false)
}

/// A no-allocate section, open until dropped. Sections nest.
#[must_use]
pub struct Section(());

impl Section {
    pub fn enter() -> Section {
        DEPTH.with(|d| d.set(d.get() + 1));
        Section(())
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get() - 1));
    }
}

/// Pauses the current section for instrumentation (event logs) that is not part of the
/// engine's algorithm and would not exist in a kernel build.
#[must_use]
pub struct Pause(());

impl Pause {
    #[inline]
    pub fn new() -> Pause {
        PAUSED.with(|p| p.set(p.get() + 1));
        Pause(())
    }
}

impl Default for Pause {
    fn default() -> Self {
        Pause::new()
    }
}

impl Drop for Pause {
    #[inline]
    fn drop(&mut self) {
        PAUSED.with(|p| p.set(p.get() - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_nest_and_pause() {
        assert!(!active());
        let a = Section::enter();
        assert!(active());
        {
            let _b = Section::enter();
            let _p = Pause::new();
            assert!(!active());
        }
        assert!(active());
        drop(a);
        assert!(!active());
    }
}
