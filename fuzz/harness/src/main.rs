//! `ptfuzz`: command-line front end. Argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().cmd {
        Cmd::Replay { files } => {
            let failed = ptfuzz_harness::replay_files(&files, &mut std::io::stdout().lock())?;
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
