// Included by every target. AddressSanitizer's defaults for these targets, read once at
// start (an ASAN_OPTIONS variable still overrides them). Stack-use-after-return detection
// puts every frame with addressable locals on a separately allocated fake stack; safe Rust
// cannot return a reference to a dead frame, and nothing these targets run is `unsafe`, so
// it found nothing while costing a quarter of the executions (docs/THROUGHPUT.md).
/// Called by the ASan runtime, when linked with it, for its default options.
#[no_mangle]
pub extern "C" fn __asan_default_options() -> *const std::ffi::c_char {
    c"detect_stack_use_after_return=0".as_ptr()
}
