//! `ptfuzz`: command-line front end. Argument parsing only; the work is in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ptfuzz_harness::campaign::multi::{run_campaign, CampaignConfig, CoverageMode, Engine};
use ptfuzz_harness::campaign::print::print_target_files;
use ptfuzz_harness::campaign::repro::guess_target;
use ptfuzz_harness::campaign::{self, Budget, Config};
use ptfuzz_harness::target::TargetName;

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
    /// if any file fails. `--target qemu_diff` replays them through QEMU's SMMUv3 as well
    /// (as `ptfuzz qemu`); the other targets' traces replay alike.
    Replay {
        #[arg(long, value_enum)]
        target: Option<TargetName>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// The main job: every target on every core for a given time (libFuzzer when cargo-fuzz
    /// is installed, else AFL++, else the built-in swarm); engine line coverage at the end;
    /// crashes deduplicated by signature, minimised, replayed
    /// twice and saved as traces; writes index.html and report.json; live progress per
    /// target. Non-zero exit if any crash was found.
    Campaign {
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Targets to run, comma-separated [default: all; qemu_diff only when QEMU starts].
        #[arg(long, value_enum, value_delimiter = ',')]
        targets: Vec<TargetName>,
        /// Worker threads [default: one per core].
        #[arg(long)]
        workers: Option<usize>,
        /// auto: libFuzzer when cargo-fuzz is installed, else AFL++ when cargo-afl is, else
        /// the built-in swarm.
        #[arg(long, value_enum, default_value_t = Engine::Auto)]
        engine: Engine,
        /// Measure the engine's line coverage at the end (auto: when cargo-fuzz is
        /// installed; nightly's llvm-tools are added when missing).
        #[arg(long, value_enum, default_value_t = CoverageMode::Auto)]
        coverage: CoverageMode,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Seed corpora, one folder per target.
        #[arg(long, default_value = "corpus")]
        corpus: PathBuf,
        /// Report directory [default: reports/<UTC timestamp>-seed<SEED>]
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Swarm-fuzz on the stable toolchain: deduplicate, minimise and save crashes as
    /// traces, write report.json and report.html; non-zero exit if any crash was found.
    Fuzz {
        /// Only `pagetable` (its swarm generator); `campaign --targets T` runs any target.
        #[arg(long, value_enum, default_value_t = TargetName::Pagetable)]
        target: TargetName,
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
    /// Run the over-reservation workload (many small VM_BIND-style jobs over a sparse
    /// address space) and print the budget report line per granule.
    PreallocRatio {
        #[arg(long, default_value_t = 10000)]
        jobs: u64,
        #[arg(long, default_value_t = 16)]
        batch: u64,
        /// Largest job in granule pages.
        #[arg(long, default_value_t = 16)]
        max_pages: u64,
        /// Distinct 1G regions the jobs land in.
        #[arg(long, default_value_t = 256)]
        regions: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Execute raw `prealloc` fuzzer files (crashes or corpus entries): print each one's
    /// budget report line (and its trace with --trace); non-zero exit if any fails.
    Prealloc {
        #[arg(long)]
        trace: bool,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Reproduce crashes: traces are replayed (against QEMU too when they attach a stream),
    /// other files run as raw inputs of --target (default: guessed from the file's name or
    /// folder, else pagetable); each twice. Non-zero exit if any file crashes.
    Repro {
        #[arg(long, value_enum)]
        target: Option<TargetName>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Corpus work for one target: `merge` gathers inputs from files and folders (libFuzzer,
    /// AFL, OSS-Fuzz, campaign crashes) into a corpus folder, copying each content once and
    /// crashing inputs to a `crashes/` folder beside it; `minimize` shrinks a folder by
    /// coverage with libFuzzer's merge (old files kept in DIR.orig); `import` files crash
    /// files by signature, each signature with a readable trace.
    Corpus {
        #[command(subcommand)]
        cmd: CorpusCmd,
    },
    /// Decode raw fuzzer files (libFuzzer/AFL crashes or corpus entries), execute them and
    /// print their traces; non-zero exit if any file does not decode or fails.
    Print {
        /// The fuzz target the files belong to [default: guessed from the file's name or
        /// folder, else pagetable].
        #[arg(long, value_enum)]
        target: Option<TargetName>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Convert raw inputs into traces (`NAME.trace`, every target) and traces into raw inputs
    /// (`NAME.bin`; pagetable and qemu_diff, whose op language can say a trace, else the
    /// error says why and names the line), beside each file or into --out. Non-zero exit if
    /// any file does not convert.
    Convert {
        /// [default: guessed from the file's name or folder, else pagetable]
        #[arg(long, value_enum)]
        target: Option<TargetName>,
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CorpusCmd {
    Merge {
        #[arg(long, value_enum)]
        target: TargetName,
        /// The corpus folder to add to [default: corpus/<target>]
        #[arg(long)]
        into: Option<PathBuf>,
        #[arg(required = true)]
        sources: Vec<PathBuf>,
    },
    Minimize {
        #[arg(long, value_enum)]
        target: TargetName,
        dir: PathBuf,
    },
    /// Import crash files (libFuzzer crash-/oom-/timeout- artifacts, AFL crashes/ folders,
    /// OSS-Fuzz clusterfuzz-testcase-*): each is run twice and filed by signature, with the
    /// first of each minimised into a readable trace; non-zero exit if any file was skipped.
    Import {
        #[arg(long, value_enum)]
        target: TargetName,
        /// Where to file them [default: crashes/<target>]
        #[arg(long)]
        into: Option<PathBuf>,
        #[arg(required = true)]
        sources: Vec<PathBuf>,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let failed = match Cli::parse().cmd {
        Cmd::Replay { target, files } => {
            let out = &mut std::io::stdout().lock();
            match target {
                Some(TargetName::QemuDiff) => ptfuzz_harness::qemu::replay_qemu_files(&files, out)?,
                _ => ptfuzz_harness::replay_files(&files, out)?,
            }
        }
        Cmd::Campaign {
            seconds,
            targets,
            workers,
            engine,
            coverage,
            seed,
            corpus,
            out,
        } => {
            let out = out.unwrap_or_else(|| campaign::default_out(seed));
            let mut cfg = CampaignConfig::new(seed, seconds, out.clone());
            if !targets.is_empty() {
                cfg.targets = targets;
            }
            if let Some(w) = workers {
                cfg.workers = w.max(1);
            }
            cfg.corpus = corpus;
            cfg.engine = engine;
            cfg.coverage = coverage;
            let report = run_campaign(&cfg)?;
            print!("{}", report.summary(&out));
            println!("report: {}", out.join("index.html").display());
            report.crashes.len()
        }
        Cmd::Fuzz { target, .. } if target != TargetName::Pagetable => {
            anyhow::bail!(
                "`fuzz` drives the pagetable target's swarm generator only; \
                 `ptfuzz campaign --targets {target}` fuzzes {target}"
            )
        }
        Cmd::Fuzz {
            target: _,
            seconds,
            inputs,
            seed,
            out,
        } => {
            let budget = inputs.map_or(Budget::Seconds(seconds), Budget::Inputs);
            let out = out.unwrap_or_else(|| campaign::default_out(seed));
            let report = campaign::run(&Config::new(seed, budget, out.clone()))?;
            print!("{}", report.summary());
            println!("report: {}", out.join("report.html").display());
            report.crashes.len()
        }
        Cmd::PreallocRatio {
            jobs,
            batch,
            max_pages,
            regions,
            seed,
        } => {
            for granule in ptfuzz_engine::Granule::ALL {
                let w = ptfuzz_harness::prealloc_ratio::Workload {
                    granule,
                    jobs,
                    batch,
                    max_pages,
                    regions,
                    seed,
                };
                let s = ptfuzz_harness::prealloc_ratio::run_workload(&w);
                println!("arm64-s1 {granule} ias=48: {s}");
            }
            0
        }
        Cmd::Prealloc { trace, files } => {
            let mut failed = 0;
            let mut total = ptfuzz_oracles::budget::BudgetStats::default();
            for f in &files {
                let bytes = std::fs::read(f)?;
                let Some(input) = ptfuzz_harness::prealloc_run::decode_prealloc(&bytes) else {
                    println!("UNDECODABLE {}", f.display());
                    failed += 1;
                    continue;
                };
                match ptfuzz_harness::prealloc_run::execute_prealloc(&input) {
                    Ok((t, s)) => {
                        println!("PASS {} {s}", f.display());
                        if trace {
                            print!("{t}");
                        }
                        total.add(&s);
                    }
                    Err(crash) => {
                        println!("FAIL {}\n{crash}", f.display());
                        failed += 1;
                    }
                }
            }
            println!("total {total}");
            failed
        }
        Cmd::Repro { target, files } => {
            campaign::repro::repro_files(&files, target, &mut std::io::stdout().lock())?
        }
        Cmd::Corpus {
            cmd:
                CorpusCmd::Merge {
                    target,
                    into,
                    sources,
                },
        } => {
            let into = into.unwrap_or_else(|| PathBuf::from("corpus").join(target.seeds()));
            let s =
                campaign::corpus::merge(target, &sources, &into, &mut std::io::stdout().lock())?;
            s.crashes.values().sum::<usize>()
        }
        Cmd::Corpus {
            cmd:
                CorpusCmd::Import {
                    target,
                    into,
                    sources,
                },
        } => {
            let into = into.unwrap_or_else(|| PathBuf::from("crashes").join(target.as_str()));
            let s =
                campaign::corpus::import(target, &sources, &into, &mut std::io::stdout().lock())?;
            s.skipped
        }
        Cmd::Corpus {
            cmd: CorpusCmd::Minimize { target, dir },
        } => {
            campaign::corpus::minimize(
                std::path::Path::new("."),
                target,
                &dir,
                &mut std::io::stdout().lock(),
            )?;
            0
        }
        Cmd::Qemu { files } => {
            ptfuzz_harness::qemu::replay_qemu_files(&files, &mut std::io::stdout().lock())?
        }
        Cmd::Print { target, files } => {
            let (out, err) = (&mut std::io::stdout().lock(), &mut std::io::stderr().lock());
            let mut bad = 0;
            for f in &files {
                let t = target.unwrap_or_else(|| guess_target(f));
                bad += print_target_files(t, std::slice::from_ref(f), out, err)?;
            }
            bad
        }
        Cmd::Convert { target, out, files } => campaign::convert::convert_files(
            target,
            &files,
            out.as_deref(),
            &mut std::io::stdout().lock(),
        )?,
    };
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
