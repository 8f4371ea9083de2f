//! Where a fuzz target panics. ClusterFuzz (OSS-Fuzz, ClusterFuzzLite) groups crashes by the
//! top frames of the crashing stack (skipping the panic machinery), and every finding used
//! to panic from the same line of `run`, so there every bug would have merged into one
//! report. Now a finding panics from a function named for the command that failed, called
//! from one named for the kind of finding (the oracle, a divergence, a panic), so the crash
//! state ClusterFuzz computes is our signature's (oracle, kind, command). Each function is
//! never inlined, and its body differs (its own name is in it) so that identical-function
//! merging cannot fold two of them into one symbol.

use crate::replay::FailureKind;
use crate::run::Crash;

/// Panics with `c`'s message from the frames that name it.
#[inline(never)]
pub fn panic_with(c: &Crash) -> ! {
    match &c.kind {
        FailureKind::Divergence { .. } => divergence(c),
        FailureKind::Mismatch { .. } => expectation_mismatch(c),
        FailureKind::RefusedDomain { .. } | FailureKind::Undeclared(_) => domain_refused(c),
        FailureKind::Panic { .. } => panic_in_engine_or_model(c),
        FailureKind::IoasidDivergence(_) => ioasid_divergence(c),
        FailureKind::Oracle(d) => match d.oracle {
            "walker" => oracle_walker(c),
            "tlb" => oracle_tlb(c),
            "accounting" => oracle_accounting(c),
            "counters" => oracle_counters(c),
            "budget" => oracle_budget(c),
            "alloc-guard" => oracle_alloc_guard(c),
            "alloc-hooks" => oracle_alloc_hooks(c),
            "ioasid-consistency" => oracle_ioasid(c),
            _ => oracle_other(c),
        },
    }
}

/// The frames of the kinds of finding; each calls the command frame straight away (the
/// choice is a macro, not a function, so no frame sits between the two).
macro_rules! frames {
    ($($name:ident),* $(,)?) => {$(
        #[inline(never)]
        #[cold]
        fn $name(c: &Crash) -> ! {
            std::hint::black_box(stringify!($name));
            by_command!(c)
        }
    )*};
}

/// The command that failed is the last line of the crash's trace.
macro_rules! by_command {
    ($c:expr) => {
        match $c.trace.lines.last().map_or("domain", |l| l.command.word()) {
            "map" => cmd_map($c),
            "unmap" => cmd_unmap($c),
            "lookup" => cmd_lookup($c),
            "grace" => cmd_grace($c),
            "fail_nth" => cmd_fail_nth($c),
            "clear" => cmd_clear($c),
            "sync" => cmd_sync($c),
            "attach" => cmd_attach($c),
            "job.prepare" => cmd_job_prepare($c),
            "job.run" => cmd_job_run($c),
            "job.cleanup" => cmd_job_cleanup($c),
            "reserve" => cmd_reserve($c),
            "unreserve" => cmd_unreserve($c),
            "domain" => cmd_domain($c),
            w if w.starts_with("ioasid.") => cmd_ioasid($c),
            _ => cmd_other($c),
        }
    };
}

/// The innermost frames, one per command; each panics itself.
macro_rules! command_frames {
    ($($name:ident),* $(,)?) => {$(
        #[inline(never)]
        #[cold]
        fn $name(c: &Crash) -> ! {
            std::hint::black_box(stringify!($name));
            panic!("{c}")
        }
    )*};
}

frames!(
    divergence,
    expectation_mismatch,
    domain_refused,
    panic_in_engine_or_model,
    ioasid_divergence,
    oracle_walker,
    oracle_tlb,
    oracle_accounting,
    oracle_counters,
    oracle_budget,
    oracle_alloc_guard,
    oracle_alloc_hooks,
    oracle_ioasid,
    oracle_other,
);

command_frames!(
    cmd_map,
    cmd_unmap,
    cmd_lookup,
    cmd_grace,
    cmd_fail_nth,
    cmd_clear,
    cmd_sync,
    cmd_attach,
    cmd_job_prepare,
    cmd_job_run,
    cmd_job_cleanup,
    cmd_reserve,
    cmd_unreserve,
    cmd_domain,
    cmd_ioasid,
    cmd_other,
);

#[cfg(test)]
mod tests {
    use std::process::Command;

    use ptfuzz_oracles::Divergence;

    use super::*;
    use crate::trace::parse;

    const CHILD: &str = "PTFUZZ_CRASH_FRAMES_CHILD";

    /// Panics as a fuzz target would, when the parent test asks for it (`oracle/command`).
    #[test]
    fn child() {
        let Ok(which) = std::env::var(CHILD) else {
            return;
        };
        let (oracle, last) = which.split_once('/').unwrap();
        let oracle: &'static str = Box::leak(oracle.to_string().into_boxed_str());
        let trace = parse(
            "t",
            &format!("domain d0 fmt=arm64-s1 granule=4k ias=48 oas=48\n{last}\n"),
        )
        .unwrap();
        let kind = FailureKind::Oracle(Divergence::new(oracle, "stale translation"));
        panic_with(&Crash { op: 0, kind, trace });
    }

    /// The names of this module's functions on the stack of the child's panic, innermost first
    /// (a child process: a panic hook is global, and other tests run beside this one).
    fn frames_of(oracle: &str, command: &str) -> Vec<String> {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_frames::tests::child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, format!("{oracle}/{command}"))
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter_map(|l| l.trim().split_once(": ").map(|(_, f)| f.to_string()))
            .filter(|f| f.contains("crash_frames::") && !f.contains("tests::"))
            .map(|f| f.rsplit("::").next().unwrap().to_string())
            .collect()
    }

    #[test]
    fn each_oracle_and_command_panics_from_its_own_frames() {
        // Innermost first: the command, the kind, the entry point (ClusterFuzz's three).
        let unmap = "unmap d0 iova=0x1000 pgsize=4k count=1";
        assert_eq!(
            frames_of("tlb", unmap),
            ["cmd_unmap", "oracle_tlb", "panic_with"]
        );
        assert_eq!(
            frames_of("accounting", unmap),
            ["cmd_unmap", "oracle_accounting", "panic_with"]
        );
        let map = "map d0 iova=0x1000 pa=0x1000 pgsize=4k count=1 prot=r";
        assert_eq!(
            frames_of("tlb", map),
            ["cmd_map", "oracle_tlb", "panic_with"]
        );
    }
}
