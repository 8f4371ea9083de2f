//! `ptfuzz campaign`: every target on every core for a given time, with the built-in
//! engine (no fuzzing tool needed): a target with a generator gets its inputs
//! (`Target::swarm`: `swarm` for pagetable and qemu_diff, `swarm_prealloc`), the others
//! (ioasid) edited seeds (`mutate`). Each worker thread takes the targets in
//! turn, a quarter second at a time, so each target gets about an equal share of every
//! core. The main thread shows progress per target, triages each new crash (signature,
//! minimised trace, replayed twice) and samples the counters once a second for the report.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};

use super::coverage::EngineCoverage;
use super::external::External;
use super::minimize::Limits;
use super::mutate::{read_seeds, Mutator};
use super::report::{CrashRecord, Stats};
use super::signature::{quietly, short_hash};
use super::triage;
use crate::exec::totals::{self, OracleTotals};
use crate::target::{run_bytes, Finding, TargetName, Verdict};
use crate::trace::{Command, Trace};

/// How long a worker stays on one target before taking the next.
const SLICE: Duration = Duration::from_millis(250);

/// How inputs are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// libFuzzer when cargo-fuzz is installed, else AFL++ when cargo-afl is, else the swarm.
    Auto,
    /// Built in: swarm inputs for pagetable, prealloc and qemu_diff, edited seeds for ioasid;
    /// needs nothing.
    Swarm,
    /// cargo-fuzz's libFuzzer, coverage-guided, fork mode (built by `.ci/fuzz.sh`).
    Libfuzzer,
    /// cargo-afl's AFL++, coverage-guided, a main and secondaries per target on one sync
    /// folder (built by `.ci/fuzz.sh afl-build`).
    Afl,
}

/// Whether the campaign ends by measuring the engine's line coverage (`.ci/coverage.sh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CoverageMode {
    /// When cargo-fuzz is installed.
    Auto,
    /// Always (installs what it needs: cargo-fuzz, nightly's llvm-tools).
    On,
    Off,
}

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct CampaignConfig {
    pub seed: u64,
    pub engine: Engine,
    /// The repository (for `.ci/fuzz.sh` when the engine is libFuzzer).
    pub root: PathBuf,
    pub seconds: u64,
    /// Worker threads (default: one per core).
    pub workers: usize,
    pub targets: Vec<TargetName>,
    /// Gets `index.html`, `report.json` and `crashes/`.
    pub out: PathBuf,
    /// Where the seed corpora are (`corpus/`, holding one folder per target).
    pub corpus: PathBuf,
    pub progress: bool,
    pub minimize: Limits,
    pub coverage: CoverageMode,
}

impl CampaignConfig {
    pub fn new(seed: u64, seconds: u64, out: PathBuf) -> CampaignConfig {
        CampaignConfig {
            seed,
            engine: Engine::Swarm,
            root: PathBuf::from("."),
            seconds,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            targets: TargetName::ALL.to_vec(),
            out,
            corpus: PathBuf::from("corpus"),
            progress: true,
            minimize: Limits::default(),
            coverage: CoverageMode::Auto,
        }
    }
}

/// One point of a target's time series.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub seconds: f64,
    pub inputs: u64,
    /// Executions per second over the last interval.
    pub exec_per_sec: f64,
    pub unique_crashes: u64,
    /// Coverage (libFuzzer's `cov`, edges) when the engine measures it.
    pub coverage: Option<u64>,
}

/// What one target did in the campaign.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetRun {
    pub target: TargetName,
    pub engine: String,
    /// Why the target did not run, when it did not (QEMU missing, ...).
    pub skipped: Option<String>,
    pub inputs: u64,
    pub undecodable: u64,
    pub crashing_inputs: u64,
    pub unique_crashes: u64,
    /// Seeds the target started from.
    pub seeds: usize,
    /// Inputs per second of wall time: the target shared the workers with the others.
    pub exec_per_sec: f64,
    pub samples: Vec<Sample>,
}

/// A unique crash, with the target that found it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TargetCrash {
    pub target: TargetName,
    /// Seconds into the campaign when it was first seen.
    pub first_seen: f64,
    /// The raw input that first showed it, when the target takes bytes.
    pub input_file: Option<String>,
    #[serde(flatten)]
    pub record: CrashRecord,
    /// The minimised trace as saved (for the report page).
    pub text: String,
}

/// Everything a campaign reports (`report.json`; `index.html` shows the same).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CampaignReport {
    pub seed: u64,
    /// The engine that ran (never `auto`).
    pub engine: Engine,
    pub seconds: f64,
    pub workers: usize,
    pub targets: Vec<TargetRun>,
    pub crashes: Vec<TargetCrash>,
    /// Commands and their outcomes, by target.
    pub stats: BTreeMap<TargetName, Stats>,
    pub oracles: OracleTotals,
    /// Line coverage of `engine/` by the inputs the campaign kept.
    pub coverage: Option<EngineCoverage>,
    /// Why coverage was not measured, when it was not.
    pub coverage_note: Option<String>,
}

/// Live counters of one target, shared by the workers.
#[derive(Default)]
struct Counters {
    inputs: AtomicU64,
    undecodable: AtomicU64,
    crashing: AtomicU64,
}

enum Event {
    Crash {
        target: TargetName,
        finding: Finding,
        input: Option<Vec<u8>>,
    },
    Done {
        stats: Vec<(TargetName, Stats)>,
        totals: OracleTotals,
    },
}

/// Runs a campaign and writes its report under `cfg.out`.
pub fn run_campaign(cfg: &CampaignConfig) -> std::io::Result<CampaignReport> {
    std::fs::create_dir_all(&cfg.out)?;
    let mut skipped = BTreeMap::new();
    if cfg.targets.contains(&TargetName::QemuDiff) {
        if let Err(e) =
            quietly(crate::qemu::session::ensure_started).unwrap_or_else(|p| Err(panic_error(p)))
        {
            skipped.insert(
                TargetName::QemuDiff,
                format!("QEMU is not available ({e}); qemu-images/install-qemu.sh installs it"),
            );
        }
        crate::qemu::session::discard();
    }
    let active: Vec<TargetName> = cfg
        .targets
        .iter()
        .copied()
        .filter(|t| !skipped.contains_key(t))
        .collect();
    let seeds: HashMap<TargetName, Vec<Vec<u8>>> = active
        .iter()
        .map(|&t| (t, read_seeds(&cfg.corpus.join(t.seeds()))))
        .collect();
    let counters: Vec<Counters> = active.iter().map(|_| Counters::default()).collect();
    let cargo_fuzz = super::libfuzzer::available();
    let engine = match cfg.engine {
        Engine::Auto if cargo_fuzz => Engine::Libfuzzer,
        Engine::Auto if super::afl::available() => Engine::Afl,
        Engine::Auto => Engine::Swarm,
        e => e,
    };
    let jobs = (cfg.workers / active.len().max(1)).max(1);
    let (engine_name, built) = match engine {
        Engine::Libfuzzer => {
            let b = super::libfuzzer::build(&cfg.root)?;
            let san = if b.sanitizer == "address" {
                "ASan"
            } else {
                "no sanitizer"
            };
            let name = format!("libfuzzer ({san}, fork mode, {jobs} job(s) per target)");
            (name, Built::Libfuzzer(b))
        }
        Engine::Afl => (
            format!("afl (AFL++ through cargo-afl, {jobs} instance(s) per target)"),
            Built::Afl(super::afl::build(&cfg.root)?),
        ),
        _ => (
            "swarm (swarm inputs for pagetable, prealloc and qemu_diff, edited seeds for ioasid)"
                .to_string(),
            Built::Nothing,
        ),
    };
    let mut main = Main::new(cfg, &active, &skipped, engine, engine_name);
    let start = Instant::now();
    let mut kept: Vec<super::coverage::Inputs> = Vec::new();
    match &built {
        Built::Nothing => {
            run_swarm(cfg, &active, &counters, &seeds, &mut main, start)?;
            for &t in &active {
                kept.push(super::coverage::Inputs {
                    target: t,
                    paths: vec![cfg.corpus.join(t.seeds())],
                    what: "the seed corpus (the swarm keeps no corpus)".into(),
                });
            }
        }
        Built::Libfuzzer(b) => {
            let work = cfg.out.join("libfuzzer");
            let mut running: Vec<Box<dyn External>> = Vec::new();
            for &t in &active {
                let seeds = cfg.corpus.join(t.seeds());
                running.push(Box::new(super::libfuzzer::start(
                    b,
                    t,
                    &seeds,
                    &work,
                    jobs,
                    cfg.seconds,
                )?));
            }
            run_external(cfg, &mut running, &counters, &mut main, start, &mut kept)?;
        }
        Built::Afl(bin) => {
            let work = cfg.out.join("afl");
            let mut running: Vec<Box<dyn External>> = Vec::new();
            for &t in &active {
                let seeds = cfg.corpus.join(t.seeds());
                running.push(Box::new(super::afl::start(
                    bin,
                    t,
                    &seeds,
                    &work,
                    jobs,
                    cfg.seconds,
                )?));
            }
            run_external(cfg, &mut running, &counters, &mut main, start, &mut kept)?;
        }
    }
    main.sample(&counters, start.elapsed(), None);
    main.finish_progress();
    let seconds = start.elapsed().as_secs_f64();
    let mut report = main.report(cfg, &counters, &seeds, skipped, seconds);
    match cfg.coverage {
        CoverageMode::Off => report.coverage_note = Some("not measured (--coverage off)".into()),
        CoverageMode::Auto if !cargo_fuzz => {
            report.coverage_note =
                Some("not measured: cargo-fuzz is not installed (--coverage on installs it)".into())
        }
        _ => {
            if cfg.progress {
                eprintln!("ptfuzz campaign: measuring engine line coverage (.ci/coverage.sh)");
            }
            match super::coverage::measure(&cfg.root, &cfg.out, &kept) {
                Ok(c) => report.coverage = Some(c),
                Err(e) if cfg.coverage == CoverageMode::On => return Err(e),
                Err(e) => report.coverage_note = Some(format!("not measured: {e}")),
            }
        }
    }
    super::page::write(&report, &cfg.out)?;
    Ok(report)
}

/// What the engine needed built.
enum Built {
    Nothing,
    Libfuzzer(super::libfuzzer::Build),
    Afl(PathBuf),
}

/// The built-in engine: worker threads until the deadline; crashes arrive as they happen.
fn run_swarm(
    cfg: &CampaignConfig,
    active: &[TargetName],
    counters: &[Counters],
    seeds: &HashMap<TargetName, Vec<Vec<u8>>>,
    main: &mut Main,
    start: Instant,
) -> std::io::Result<()> {
    let deadline = start + Duration::from_secs(cfg.seconds);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| -> std::io::Result<()> {
        for w in 0..cfg.workers.max(1) {
            let tx = tx.clone();
            s.spawn(move || worker(w, cfg.seed, active, counters, seeds, deadline, tx));
        }
        drop(tx);
        let mut last_sample = Instant::now();
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(Event::Crash {
                    target,
                    finding,
                    input,
                }) => main.crash(target, finding, input, start.elapsed().as_secs_f64())?,
                Ok(Event::Done { stats, totals }) => main.done(stats, &totals),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last_sample.elapsed() >= Duration::from_secs(1) {
                last_sample = Instant::now();
                main.sample(counters, start.elapsed(), None);
            }
        }
        Ok(())
    })
}

/// An external engine: every target at once for the whole time, each with its share of the
/// workers; the crash files it left are run again here, to be signed, deduplicated and
/// triaged; the folders of the inputs it kept go to `kept` for the coverage run.
fn run_external(
    cfg: &CampaignConfig,
    running: &mut [Box<dyn External>],
    counters: &[Counters],
    main: &mut Main,
    start: Instant,
    kept: &mut Vec<super::coverage::Inputs>,
) -> std::io::Result<()> {
    // Both engines stop themselves at their time limit; a run that does not is killed.
    let kill_at = start + Duration::from_secs(cfg.seconds + 30);
    let mut done = vec![false; running.len()];
    while !done.iter().all(|&d| d) {
        std::thread::sleep(Duration::from_millis(1000));
        let now: Vec<_> = running.iter().map(|r| r.status()).collect();
        for (i, s) in now.iter().enumerate() {
            counters[i].inputs.store(s.execs, Relaxed);
            counters[i].crashing.store(s.crashes, Relaxed);
        }
        let cov: Vec<u64> = now.iter().map(|s| s.coverage).collect();
        main.sample(counters, start.elapsed(), Some(&cov));
        for (i, r) in running.iter_mut().enumerate() {
            if !done[i] {
                done[i] = r.finished()?;
                if !done[i] && Instant::now() > kill_at {
                    r.kill();
                }
            }
        }
    }
    for r in running.iter() {
        let t = r.target();
        kept.push(super::coverage::Inputs {
            target: t,
            paths: r.corpus(),
            what: format!("the corpus {} kept", main.engine_name),
        });
        for f in r.crash_files() {
            let bytes = std::fs::read(&f)?;
            let at = start.elapsed().as_secs_f64();
            match run_bytes(t, &bytes) {
                Verdict::Crash(finding) => main.crash(t, finding, Some(bytes), at)?,
                _ => {
                    let name = f
                        .file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default();
                    let kind = name.split(['-', ',']).next().unwrap_or("crash").to_string();
                    let finding = Finding {
                        signature: format!("{kind} that does not reproduce in-process"),
                        kind: None,
                        message: format!(
                            "{} ({} bytes): the fuzzer reported it ({kind}); run here it passes",
                            f.display(),
                            bytes.len()
                        ),
                        trace: None,
                    };
                    main.crash(t, finding, Some(bytes), at)?
                }
            }
        }
    }
    Ok(())
}

fn panic_error(msg: String) -> ptfuzz_oracles::qemu::oracle::OracleError {
    ptfuzz_oracles::qemu::oracle::OracleError::Unsupported(msg)
}

/// One worker: the targets in turn, a slice at a time, until the deadline.
fn worker(
    w: usize,
    seed: u64,
    active: &[TargetName],
    counters: &[Counters],
    seeds: &HashMap<TargetName, Vec<Vec<u8>>>,
    deadline: Instant,
    tx: mpsc::Sender<Event>,
) {
    if active.is_empty() {
        return;
    }
    let mix = |t: usize| seed ^ ((w as u64) << 32) ^ ((t as u64) << 48);
    let mut gens: Vec<Generator> = active
        .iter()
        .enumerate()
        .map(|(i, &t)| match t.target().swarm(mix(i)) {
            Some(runs) => Generator::Structured(runs),
            None => Generator::Bytes(Box::new(Mutator::new(mix(i), seeds[&t].clone()))),
        })
        .collect();
    let mut stats: Vec<Stats> = active.iter().map(|_| Stats::default()).collect();
    let mut slice = w;
    while Instant::now() < deadline {
        let i = slice % active.len();
        let t = active[i];
        let end = (Instant::now() + SLICE).min(deadline);
        while Instant::now() < end {
            let (verdict, input) = gens[i].run(t);
            counters[i].inputs.fetch_add(1, Relaxed);
            match verdict {
                Verdict::Undecodable => {
                    counters[i].undecodable.fetch_add(1, Relaxed);
                }
                Verdict::Pass(trace) => {
                    stats[i].inputs += 1;
                    if let Some(trace) = trace {
                        record(&mut stats[i], &trace);
                    }
                }
                Verdict::Crash(finding) => {
                    stats[i].inputs += 1;
                    stats[i].crashing_inputs += 1;
                    if let Some(trace) = &finding.trace {
                        record(&mut stats[i], trace);
                    }
                    counters[i].crashing.fetch_add(1, Relaxed);
                    let _ = tx.send(Event::Crash {
                        target: t,
                        finding,
                        input,
                    });
                }
            }
        }
        slice += 1;
    }
    let stats = active.iter().copied().zip(stats).collect();
    let _ = tx.send(Event::Done {
        stats,
        totals: totals::take(),
    });
}

/// Where a worker's inputs for one target come from.
enum Generator {
    /// The target's own generator (`Target::swarm`), each call one input run.
    Structured(Box<dyn FnMut() -> Verdict>),
    /// The seeds' bytes, mutated.
    Bytes(Box<Mutator>),
}

impl Generator {
    /// Runs the next input; the raw bytes too, when the target takes bytes.
    fn run(&mut self, t: TargetName) -> (Verdict, Option<Vec<u8>>) {
        match self {
            Generator::Structured(next) => (next(), None),
            Generator::Bytes(m) => {
                let data = m.next_input();
                let v = run_bytes(t, data);
                let keep = matches!(v, Verdict::Crash(_)).then(|| data.to_vec());
                (v, keep)
            }
        }
    }
}

/// The main thread's state: progress bars, unique crashes, samples, sums.
struct Main<'a> {
    cfg: &'a CampaignConfig,
    engine: Engine,
    engine_name: String,
    active: Vec<TargetName>,
    bars: Vec<Option<ProgressBar>>,
    multi: Option<MultiProgress>,
    plain: bool,
    last_plain: Instant,
    crashes: Vec<TargetCrash>,
    index: HashMap<(TargetName, String), usize>,
    samples: Vec<Vec<Sample>>,
    stats: BTreeMap<TargetName, Stats>,
    totals: OracleTotals,
}

impl<'a> Main<'a> {
    fn new(
        cfg: &'a CampaignConfig,
        active: &[TargetName],
        skipped: &BTreeMap<TargetName, String>,
        engine: Engine,
        engine_name: String,
    ) -> Main<'a> {
        let tty = cfg.progress && std::io::stderr().is_terminal();
        let multi = tty.then(MultiProgress::new);
        let style = ProgressStyle::with_template("{prefix:>10} [{elapsed_precise}] {msg}")
            .expect("valid template");
        let bars = active
            .iter()
            .map(|t| {
                multi.as_ref().map(|m| {
                    let b = m.add(ProgressBar::new(cfg.seconds).with_style(style.clone()));
                    b.set_prefix(t.as_str());
                    b
                })
            })
            .collect();
        if cfg.progress {
            let why = match (cfg.engine, engine) {
                (Engine::Auto, Engine::Libfuzzer) => ", picked: cargo-fuzz is installed",
                (Engine::Auto, Engine::Afl) => {
                    ", picked: cargo-afl is installed, cargo-fuzz is not"
                }
                (Engine::Auto, _) => {
                    ", picked: neither cargo-fuzz nor cargo-afl is installed (.ci/fuzz.sh install adds both)"
                }
                _ => "",
            };
            eprintln!(
                "ptfuzz campaign: {} worker(s), {} s, engine: {engine_name}{why}",
                cfg.workers, cfg.seconds
            );
            for (t, why) in skipped {
                eprintln!("ptfuzz campaign: {t} skipped: {why}");
            }
        }
        Main {
            cfg,
            engine,
            engine_name,
            active: active.to_vec(),
            bars,
            multi,
            plain: cfg.progress && !tty,
            last_plain: Instant::now(),
            crashes: Vec::new(),
            index: HashMap::new(),
            samples: active.iter().map(|_| Vec::new()).collect(),
            stats: BTreeMap::new(),
            totals: OracleTotals::default(),
        }
    }

    fn unique(&self, t: TargetName) -> u64 {
        self.crashes.iter().filter(|c| c.target == t).count() as u64
    }

    fn sample(&mut self, counters: &[Counters], elapsed: Duration, coverage: Option<&[u64]>) {
        let secs = elapsed.as_secs_f64();
        let mut lines = Vec::new();
        for (i, &t) in self.active.clone().iter().enumerate() {
            let inputs = counters[i].inputs.load(Relaxed);
            let unique = self.unique(t);
            // The rate over the last five seconds or so: libFuzzer's fork mode reports its
            // count every few seconds, so a one-second window would read 0 in between.
            let prev = self.samples[i].last().copied().unwrap_or_default();
            let back = self.samples[i]
                .iter()
                .rev()
                .find(|p| p.seconds <= secs - 4.5)
                .copied()
                .unwrap_or_default();
            let dt = (secs - back.seconds).max(1e-9);
            let cov = coverage.and_then(|c| c.get(i).copied()).or(prev.coverage);
            let s = Sample {
                seconds: secs,
                inputs,
                exec_per_sec: inputs.saturating_sub(back.inputs) as f64 / dt,
                unique_crashes: unique,
                coverage: cov,
            };
            self.samples[i].push(s);
            let cov_text = cov.map_or(String::new(), |c| format!(", coverage {c}"));
            let msg = format!(
                "{inputs} execs, {:.0} exec/s{cov_text}, {} crashing inputs, {unique} unique crashes",
                s.exec_per_sec,
                counters[i].crashing.load(Relaxed)
            );
            if let Some(b) = &self.bars[i] {
                b.set_position(elapsed.as_secs());
                b.set_message(msg.clone());
            }
            lines.push(format!("{t:>10}: {msg}"));
        }
        if self.plain && self.last_plain.elapsed() >= Duration::from_secs(5) {
            self.last_plain = Instant::now();
            for l in lines {
                eprintln!("[{secs:>5.0}s] {l}");
            }
        }
    }

    fn note(&self, msg: &str) {
        match &self.multi {
            Some(m) => {
                let _ = m.println(msg);
            }
            None if self.plain => eprintln!("{msg}"),
            None => {}
        }
    }

    fn finish_progress(&self) {
        for b in self.bars.iter().flatten() {
            b.finish();
        }
    }

    fn done(&mut self, stats: Vec<(TargetName, Stats)>, totals: &OracleTotals) {
        for (t, s) in stats {
            self.stats.entry(t).or_default().add(s);
        }
        self.totals.add(totals);
    }

    /// A crash: counted under its signature; the first of each is triaged and saved.
    fn crash(
        &mut self,
        t: TargetName,
        f: Finding,
        input: Option<Vec<u8>>,
        at: f64,
    ) -> std::io::Result<()> {
        let sig = format!("{t}/{}", f.signature);
        if let Some(&i) = self.index.get(&(t, sig.clone())) {
            self.crashes[i].record.count += 1;
            return Ok(());
        }
        let dir = self.cfg.out.join("crashes");
        std::fs::create_dir_all(&dir)?;
        let input_file = match &input {
            Some(bytes) => {
                let name = format!("{t}-{}.bin", short_hash(&sig));
                std::fs::write(dir.join(&name), bytes)?;
                Some(format!("crashes/{name}"))
            }
            None => None,
        };
        let found_by = format!("ptfuzz campaign --seed {}, target {t}", self.cfg.seed);
        let trace = f.trace.ok_or_else(|| {
            let repro = input_file
                .as_ref()
                .map_or(String::new(), |p| format!("# input: {p}\n"));
            let msg: String = f.message.lines().map(|l| format!("# {l}\n")).collect();
            format!("{repro}# no trace: the target reported through a panic:\n{msg}")
        });
        let record = triage::save(
            &dir,
            Some(t),
            &found_by,
            &f.signature,
            || trace,
            &f.message,
            self.cfg.minimize,
        )?;
        let text = std::fs::read_to_string(self.cfg.out.join(&record.file)).unwrap_or_default();
        self.note(&format!(
            "new crash in {t}: {} -> {}",
            f.signature,
            self.cfg.out.join(&record.file).display()
        ));
        self.index.insert((t, sig), self.crashes.len());
        self.crashes.push(TargetCrash {
            target: t,
            first_seen: at,
            input_file,
            record,
            text,
        });
        Ok(())
    }

    fn report(
        mut self,
        cfg: &CampaignConfig,
        counters: &[Counters],
        seeds: &HashMap<TargetName, Vec<Vec<u8>>>,
        skipped: BTreeMap<TargetName, String>,
        seconds: f64,
    ) -> CampaignReport {
        let mut targets = Vec::new();
        for &t in &cfg.targets {
            let run = match self.active.iter().position(|&a| a == t) {
                Some(i) => {
                    let inputs = counters[i].inputs.load(Relaxed);
                    TargetRun {
                        target: t,
                        engine: match self.engine {
                            Engine::Libfuzzer | Engine::Afl => self.engine_name.clone(),
                            _ if matches!(t, TargetName::Pagetable | TargetName::Prealloc) => {
                                "swarm".into()
                            }
                            _ => "swarm (edited seeds)".into(),
                        },
                        skipped: None,
                        inputs,
                        undecodable: counters[i].undecodable.load(Relaxed),
                        crashing_inputs: counters[i].crashing.load(Relaxed),
                        unique_crashes: self.unique(t),
                        seeds: seeds.get(&t).map_or(0, Vec::len),
                        exec_per_sec: inputs as f64 / seconds.max(1e-9),
                        samples: std::mem::take(&mut self.samples[i]),
                    }
                }
                None => TargetRun {
                    target: t,
                    engine: "-".into(),
                    skipped: skipped.get(&t).cloned(),
                    inputs: 0,
                    undecodable: 0,
                    crashing_inputs: 0,
                    unique_crashes: 0,
                    seeds: 0,
                    exec_per_sec: 0.0,
                    samples: Vec::new(),
                },
            };
            targets.push(run);
        }
        CampaignReport {
            seed: cfg.seed,
            engine: self.engine,
            seconds,
            workers: cfg.workers,
            targets,
            crashes: self.crashes,
            stats: self.stats,
            oracles: self.totals,
            coverage: None,
            coverage_note: None,
        }
    }
}

impl CampaignReport {
    /// A few lines for the terminal.
    pub fn summary(&self, out: &Path) -> String {
        let mut s = format!(
            "campaign: {:.1} s on {} worker(s), seed {}\n",
            self.seconds, self.workers, self.seed
        );
        for t in &self.targets {
            match &t.skipped {
                Some(why) => s += &format!("  {:>10}: skipped: {why}\n", t.target.as_str()),
                None => {
                    s += &format!(
                        "  {:>10}: {} inputs, {:.0} exec/s, {} unique crash(es)\n",
                        t.target.as_str(),
                        t.inputs,
                        t.exec_per_sec,
                        t.unique_crashes
                    )
                }
            }
        }
        for c in &self.crashes {
            s += &format!(
                "  crash {} x{} {} ops{}: {}\n",
                out.join(&c.record.file).display(),
                c.record.count,
                c.record.ops_after_minimise,
                if c.record.reproduces {
                    ""
                } else {
                    " (does not reproduce from the file)"
                },
                c.record.signature
            );
        }
        s
    }

    /// The configurations the pagetable inputs ran on, as `format/granule` → inputs.
    pub fn configurations(&self) -> BTreeMap<String, u64> {
        let mut m = BTreeMap::new();
        for s in self.stats.values() {
            for (k, n) in &s.configs {
                *m.entry(k.clone()).or_default() += n;
            }
        }
        m
    }
}

/// Counts a trace's commands and outcomes, and the configuration of its first domain as
/// `format/granule[/host-<page>][/concat-max][/noncoherent][/custom][/tight]` (the
/// configuration-coverage table).
fn record(stats: &mut Stats, trace: &Trace) {
    stats.record(trace);
    if let Some(Command::Domain {
        cfg, custom_alloc, ..
    }) = trace.lines.first().map(|l| &l.command)
    {
        let mut key = format!("{}/{}", cfg.format, cfg.granule);
        if let Some(host) = cfg.host_page {
            key += &format!("/host-{host}");
        }
        if cfg.concat == ptfuzz_engine::Concat::Max {
            key += "/concat-max";
        }
        if !cfg.coherent {
            key += "/noncoherent";
        }
        if *custom_alloc {
            key += "/custom";
        }
        if cfg.phys_base != ptfuzz_engine::config::DEFAULT_PHYS_BASE {
            key += "/tight";
        }
        *stats.configs.entry(key).or_default() += 1;
    }
}
