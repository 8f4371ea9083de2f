//! A QEMU that dies mid-campaign: the qemu_diff target notices, saves the input that was
//! running, starts a fresh QEMU and runs the input again; nothing panics.

use ptfuzz_harness::qemu::{run_qemu_bytes, session};

#[test]
fn a_killed_qemu_is_restarted_and_the_input_saved() {
    ptfuzz_oracles::qemu::driver::install::ensure_installed().unwrap_or_else(|e| panic!("{e}"));
    let dir = std::env::temp_dir().join(format!("ptfuzz-qemu-restart-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // SAFETY: set before any other thread of this test binary reads the environment (this is
    // its only test).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var("PTFUZZ_QEMU_FAILURES", &dir)
    };
    let seed = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../corpus/pagetable/block-and-pages.bin"
    ))
    .unwrap();
    run_qemu_bytes(&seed);
    let pid = session::with_oracle(|o| Ok(o.qemu().pid())).unwrap();
    // Kill the worker's QEMU behind its back.
    assert!(std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    run_qemu_bytes(&seed);
    let saved: Vec<_> = std::fs::read_dir(&dir)
        .expect("the input was saved")
        .map(|e| e.unwrap().path())
        .collect();
    let bin = saved
        .iter()
        .find(|p| p.extension().is_some_and(|x| x == "bin"))
        .expect("a .bin");
    assert_eq!(std::fs::read(bin).unwrap(), seed);
    let why = std::fs::read_to_string(bin.with_extension("txt")).unwrap();
    assert!(
        why.to_lowercase().contains("died") || why.contains("EOF") || why.contains("closed"),
        "{why}"
    );
    let pid2 = session::with_oracle(|o| Ok(o.qemu().pid())).unwrap();
    assert_ne!(pid, pid2, "a fresh QEMU runs now");
    std::fs::remove_dir_all(&dir).unwrap();
}
