//! `ptfuzz fuzz`: a campaign on the stable toolchain, with no fuzzing engine. Swarm inputs
//! run through the same `execute` every engine uses; crashes are deduplicated by
//! signature, minimised, saved as traces that state the model's outcomes, and summed up in
//! a report. Given a seed and a number of inputs, a campaign is deterministic.

pub mod afl;
pub mod convert;
pub mod corpus;
pub mod coverage;
pub mod external;
pub mod libfuzzer;
pub mod minimize;
pub mod multi;
pub mod mutate;
pub mod page;
pub mod print;
pub mod report;
pub mod repro;
pub mod save;
pub mod signature;
pub mod swarm;
pub mod swarm_prealloc;
pub mod triage;

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use crate::exec::{CheckedDomain, Created};
use crate::input::{resolve_config, Input, Pools, Resolver, MAX_OPS};
use crate::run::execute;
use crate::trace::{Command, Trace, TraceLine};
use minimize::Limits;
use report::{CrashRecord, Report, Stats};
use signature::{panic_signature, quietly};
use swarm::Swarm;

/// When a campaign stops.
#[derive(Clone, Copy, Debug)]
pub enum Budget {
    Seconds(u64),
    /// A fixed number of inputs: the same seed gives the same campaign.
    Inputs(u64),
}

/// A campaign's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub seed: u64,
    pub budget: Budget,
    /// Gets `report.json`, `report.html` and `crashes/`.
    pub out: PathBuf,
    /// Show progress on stderr.
    pub progress: bool,
    pub minimize: Limits,
}

impl Config {
    pub fn new(seed: u64, budget: Budget, out: PathBuf) -> Config {
        Config {
            seed,
            budget,
            out,
            progress: true,
            minimize: Limits::default(),
        }
    }
}

/// `reports/<UTC timestamp>-seed<S>`, so campaigns never overwrite each other.
pub fn default_out(seed: u64) -> PathBuf {
    Path::new("reports").join(format!("{}-seed{seed}", utc_stamp(SystemTime::now())))
}

/// Runs a campaign and writes its report (and crash traces) under `cfg.out`.
pub fn run(cfg: &Config) -> std::io::Result<Report> {
    let start = Instant::now();
    let mut swarm = Swarm::new(cfg.seed);
    let mut stats = Stats::default();
    let mut crashes = Crashes {
        cfg,
        records: Vec::new(),
        index: HashMap::new(),
    };
    let mut progress = Progress::new(cfg);
    for k in 0u64.. {
        let done = match cfg.budget {
            Budget::Seconds(s) => start.elapsed() >= Duration::from_secs(s),
            Budget::Inputs(n) => k >= n,
        };
        if done {
            break;
        }
        let input = swarm.next_input();
        stats.inputs += 1;
        let (dc, _) = resolve_config(&input.config);
        *stats
            .configs
            .entry(format!("{}/{}", dc.format, dc.granule))
            .or_default() += 1;
        match quietly(|| execute(&input)) {
            Ok(Ok(trace)) => stats.record(&trace),
            Ok(Err(crash)) => {
                stats.record(&crash.trace);
                stats.crashing_inputs += 1;
                let word = crash
                    .trace
                    .lines
                    .last()
                    .map_or("domain", |l| l.command.word());
                let sig = signature::signature(&crash.kind, word);
                let (msg, trace) = (crash.kind.to_string(), crash.trace);
                crashes.add(k, sig, || Ok(trace), &msg, &mut progress)?;
            }
            Err(panic) => {
                stats.crashing_inputs += 1;
                let sig = panic_signature(&panic);
                crashes.add(k, sig, || panic_trace(&input), &panic, &mut progress)?;
            }
        }
        progress.tick(k + 1, start.elapsed(), crashes.records.len());
    }
    progress.finish();
    let seconds = start.elapsed().as_secs_f64();
    let report = Report {
        seed: cfg.seed,
        seconds,
        exec_per_sec: stats.inputs as f64 / seconds.max(1e-9),
        stats,
        crashes: crashes.records,
    };
    report.write(&cfg.out)?;
    Ok(report)
}

/// The unique crashes so far, in the order found.
struct Crashes<'a> {
    cfg: &'a Config,
    records: Vec<CrashRecord>,
    index: HashMap<String, usize>,
}

impl Crashes<'_> {
    /// Counts a crash of input `k`; the first of its signature is minimised and saved.
    /// `trace` is only built for a new signature (for a panic it costs re-executions).
    fn add(
        &mut self,
        k: u64,
        sig: String,
        trace: impl FnOnce() -> Result<Trace, String>,
        msg: &str,
        progress: &mut Progress,
    ) -> std::io::Result<()> {
        if let Some(&i) = self.index.get(&sig) {
            self.records[i].count += 1;
            return Ok(());
        }
        let dir = self.cfg.out.join("crashes");
        let found_by = format!("ptfuzz fuzz --seed {}, input #{k}", self.cfg.seed);
        let mut record = triage::save(
            &dir,
            Some(crate::target::TargetName::Pagetable),
            &found_by,
            &sig,
            trace,
            msg,
            self.cfg.minimize,
        )?;
        record.first_input = k;
        progress.note(&format!(
            "new crash: {sig} -> {}",
            self.cfg.out.join(&record.file).display()
        ));
        self.index.insert(sig, self.records.len());
        self.records.push(record);
        Ok(())
    }
}

/// A trace for an input whose execution panicked outside the executor's guards, where
/// `execute` returns no trace: the ops before the first panicking prefix, then the op that
/// panicked, resolved against the state they left. If resolving that op is what panics,
/// the error says so, with the prefix and the op, as comment lines.
pub(crate) fn panic_trace(input: &Input) -> Result<Trace, String> {
    let prefix = |n: usize| Input {
        config: input.config,
        ops: input.ops[..n].to_vec(),
    };
    let len = input.ops.len().min(MAX_OPS);
    let no_prefix = || format!("# no prefix of the input panics again; the input:\n# {input:?}\n");
    let n = (0..=len)
        .find(|&n| quietly(|| execute(&prefix(n))).is_err())
        .ok_or_else(no_prefix)?;
    let (cfg, custom_alloc) = resolve_config(&input.config);
    let domain = TraceLine {
        line: 1,
        command: Command::Domain {
            name: "d0".into(),
            cfg,
            custom_alloc,
        },
        expect: None,
    };
    if n == 0 {
        return Ok(Trace {
            lines: vec![domain],
        });
    }
    let mut trace = match quietly(|| execute(&prefix(n - 1))) {
        Ok(Ok(t)) => t,
        _ => return Err(no_prefix()),
    };
    let replayed = quietly(|| match CheckedDomain::create(&cfg, custom_alloc) {
        Created::Both(mut d) => trace.lines[1..]
            .iter()
            .all(|l| d.apply(&l.command).is_ok())
            .then_some(d),
        _ => None,
    });
    let Ok(Some(d)) = replayed else {
        return Err(no_prefix());
    };
    let resolver = Resolver {
        pools: Pools::new(d.model()),
        dom: "d0".into(),
    };
    let op = &input.ops[n - 1];
    let command = quietly(|| resolver.command(op, d.model())).map_err(|_| {
        let commented: String = trace.lines.iter().map(|l| format!("#   {l}\n")).collect();
        format!("# op #{} panics while it is resolved (harness, not engine), after:\n{commented}#   {op:?}\n", n - 1)
    })?;
    let line = trace.lines.len() + 1;
    trace.lines.push(TraceLine {
        line,
        command,
        expect: None,
    });
    Ok(trace)
}

/// Progress on stderr: an indicatif bar on a terminal, else a plain line every 5 s.
struct Progress {
    bar: Option<ProgressBar>,
    plain: bool,
    last: Instant,
    budget: Budget,
}

impl Progress {
    fn new(cfg: &Config) -> Progress {
        let tty = cfg.progress && std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let len = match cfg.budget {
                Budget::Seconds(s) => s,
                Budget::Inputs(n) => n,
            };
            let style = ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {msg}")
                .expect("valid template");
            ProgressBar::new(len).with_style(style)
        });
        Progress {
            bar,
            plain: cfg.progress && !tty,
            last: Instant::now(),
            budget: cfg.budget,
        }
    }

    fn tick(&mut self, inputs: u64, elapsed: Duration, crashes: usize) {
        let line = || {
            let rate = inputs as f64 / elapsed.as_secs_f64().max(1e-9);
            format!("{inputs} inputs, {rate:.0} exec/s, {crashes} unique crashes")
        };
        if let Some(bar) = &self.bar {
            if inputs.is_multiple_of(64) {
                bar.set_position(match self.budget {
                    Budget::Seconds(_) => elapsed.as_secs(),
                    Budget::Inputs(_) => inputs,
                });
                bar.set_message(line());
            }
        } else if self.plain && self.last.elapsed() >= Duration::from_secs(5) {
            self.last = Instant::now();
            eprintln!("[{:>5.0}s] {}", elapsed.as_secs_f64(), line());
        }
    }

    fn note(&self, msg: &str) {
        match &self.bar {
            Some(bar) => bar.println(msg),
            None if self.plain => eprintln!("{msg}"),
            None => {}
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `20250102T030405Z` (UTC), without a date-time dependency.
fn utc_stamp(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_stamps() {
        assert_eq!(utc_stamp(UNIX_EPOCH), "19700101T000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_709_251_199); // leap year, last second of Feb
        assert_eq!(utc_stamp(t), "20240229T235959Z");
    }
}
