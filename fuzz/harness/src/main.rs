//! `ptfuzz`: command-line front end. Argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ptfuzz_harness::campaign::print::{print_files, print_ioasid_files};
use ptfuzz_harness::campaign::{self, Budget, Config};

#[derive(Parser)]
#[command(
    version,
    about = "Fuzzing and differential testing of IOMMU page tables"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replay traces against engine and model; one PASS/FAIL line per file, non-zero exit
    /// if any file fails.
    Replay {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Swarm-fuzz on the stable toolchain: deduplicate, minimise and save crashes as
    /// traces, write report.json and report.html; non-zero exit if any crash was found.
    Fuzz {
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Stop after this many inputs instead (same seed and count = same campaign).
        #[arg(long, conflicts_with = "seconds")]
        inputs: Option<u64>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Report directory [default: reports/<UTC timestamp>-seed<SEED>]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replay traces against engine, model and QEMU's SMMUv3 (qemu-images/install-qemu.sh
    /// installs it); prints each probe's outcome, PASS/FAIL per file, non-zero exit if any
    /// file fails. Known QEMU deviations are printed, not failures.
    Qemu {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Decode raw fuzzer files (libFuzzer/AFL crashes or corpus entries), execute them and
    /// print their traces; non-zero exit if any file does not decode or fails.
    Print {
        /// The fuzz target the files belong to: pagetable or ioasid.
        #[arg(long, default_value = "pagetable", value_parser = ["pagetable", "ioasid"])]
        target: String,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let failed = match Cli::parse().cmd {
        Cmd::Replay { files } => ptfuzz_harness::replay_files(&files, &mut std::io::stdout().lock())?,
        Cmd::Fuzz { seconds, inputs, seed, out } => {
            let budget = inputs.map_or(Budget::Seconds(seconds), Budget::Inputs);
            let out = out.unwrap_or_else(|| campaign::default_out(seed));
            let report = campaign::run(&Config::new(seed, budget, out.clone()))?;
            print!("{}", report.summary());
            println!("report: {}", out.join("report.html").display());
            report.crashes.len()
        }
        Cmd::Qemu { files } => ptfuzz_harness::qemu::replay_qemu_files(&files, &mut std::io::stdout().lock())?,
        Cmd::Print { target, files } => {
            let print = if target == "ioasid" { print_ioasid_files } else { print_files };
            print(&files, &mut std::io::stdout().lock(), &mut std::io::stderr().lock())?
        }
    };
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
