//! The campaign report: `report.json` for tools (CI trends, dashboards) and `report.html`,
//! one self-contained page for people, both from the same [`Report`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::trace::{Command, Trace};

/// What a campaign ran. Depends only on the seed and the number of inputs, never on time,
/// so two runs over the same inputs compare equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub inputs: u64,
    /// Commands run (domain lines not counted).
    pub ops: u64,
    /// Inputs that crashed, all signatures together.
    pub crashing_inputs: u64,
    /// Commands run, by command word.
    pub op_kinds: BTreeMap<String, u64>,
    /// Inputs, by `format/granule` of their domain.
    pub configs: BTreeMap<String, u64>,
    /// By command word, then by outcome: `ok`, `err=KIND`, `pa`, `none`, or `crash` for the
    /// command an input crashed on.
    pub outcomes: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Stats {
    /// Adds another worker's counts.
    pub fn add(&mut self, o: Stats) {
        self.inputs += o.inputs;
        self.ops += o.ops;
        self.crashing_inputs += o.crashing_inputs;
        for (k, n) in o.op_kinds {
            *self.op_kinds.entry(k).or_default() += n;
        }
        for (k, n) in o.configs {
            *self.configs.entry(k).or_default() += n;
        }
        for (k, m) in o.outcomes {
            let e = self.outcomes.entry(k).or_default();
            for (w, n) in m {
                *e.entry(w).or_default() += n;
            }
        }
    }

    /// Counts the op lines of a trace an input produced.
    pub fn record(&mut self, trace: &Trace) {
        for l in &trace.lines {
            if matches!(l.command, Command::Domain { .. }) {
                continue;
            }
            let word = l.command.word();
            self.ops += 1;
            *self.op_kinds.entry(word.into()).or_default() += 1;
            let outcome = match l.expect {
                None => "crash".to_string(),
                Some(e) => match (e.err, e.pa, e.none) {
                    (Some(k), _, _) => format!("err={k}"),
                    (_, Some(_), _) => "pa".into(),
                    (_, _, true) => "none".into(),
                    _ => "ok".into(),
                },
            };
            *self
                .outcomes
                .entry(word.into())
                .or_default()
                .entry(outcome)
                .or_default() += 1;
        }
    }
}

/// One unique crash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashRecord {
    pub signature: String,
    /// The oracle finding's kind (`walker/leaf-output-address`), when an oracle found it.
    #[serde(default)]
    pub kind: Option<String>,
    /// Relative to the report's directory: `crashes/<hash>.trace`.
    pub file: String,
    /// 0-based index of the first input with this signature.
    pub first_input: u64,
    /// Inputs with this signature.
    pub count: u64,
    pub ops_before_minimise: usize,
    pub ops_after_minimise: usize,
    /// How the saved trace fails.
    pub failure: String,
    /// Whether replaying the saved file fails with the same signature.
    pub reproduces: bool,
}

/// Everything a campaign reports.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub seed: u64,
    pub seconds: f64,
    pub exec_per_sec: f64,
    #[serde(flatten)]
    pub stats: Stats,
    pub crashes: Vec<CrashRecord>,
}

impl Report {
    /// Writes `report.json` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let json = serde_json::to_string_pretty(self).map_err(io::Error::other)?;
        std::fs::write(dir.join("report.json"), json + "\n")?;
        std::fs::write(dir.join("report.html"), self.html())
    }

    /// A few lines for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "seed {}: {} inputs ({} ops) in {:.1} s, {:.0} exec/s\n",
            self.seed, self.stats.inputs, self.stats.ops, self.seconds, self.exec_per_sec
        );
        let _ = writeln!(
            s,
            "{} unique crash(es) from {} crashing input(s)",
            self.crashes.len(),
            self.stats.crashing_inputs
        );
        for c in &self.crashes {
            let _ = writeln!(
                s,
                "  {}  x{}  {} ops  {}{}",
                c.file,
                c.count,
                c.ops_after_minimise,
                c.signature,
                if c.reproduces {
                    ""
                } else {
                    "  (the saved file does not reproduce it)"
                }
            );
        }
        s
    }

    fn html(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ptfuzz campaign, seed {}</title>\n\
             <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1.5em}}\
             td,th{{border:1px solid #bbb;padding:.2em .6em;text-align:left}}td.n{{text-align:right}}\
             code{{font-size:90%}}</style></head><body>\n<h1>ptfuzz campaign, seed {}</h1>\n",
            self.seed, self.seed
        );
        let rows = [
            ("seed", self.seed.to_string()),
            ("seconds", format!("{:.1}", self.seconds)),
            ("inputs", self.stats.inputs.to_string()),
            ("ops", self.stats.ops.to_string()),
            ("exec/s", format!("{:.0}", self.exec_per_sec)),
            ("crashing inputs", self.stats.crashing_inputs.to_string()),
            ("unique crashes", self.crashes.len().to_string()),
        ];
        table(
            &mut h,
            "Run",
            &["", ""],
            rows.iter().map(|(k, v)| vec![k.to_string(), v.clone()]),
        );
        let counts = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| vec![k.clone(), v.to_string()])
                .collect::<Vec<_>>()
        };
        table(
            &mut h,
            "Ops",
            &["command", "count"],
            counts(&self.stats.op_kinds),
        );
        table(
            &mut h,
            "Domains",
            &["format/granule", "inputs"],
            counts(&self.stats.configs),
        );
        let outcomes = self.stats.outcomes.iter().flat_map(|(w, m)| {
            m.iter()
                .map(move |(o, n)| vec![w.clone(), o.clone(), n.to_string()])
        });
        table(
            &mut h,
            "Outcomes",
            &["command", "outcome", "count"],
            outcomes,
        );
        h.push_str("<h2>Crashes</h2>\n");
        if self.crashes.is_empty() {
            h.push_str("<p>none</p>\n");
        } else {
            h.push_str(
                "<table><tr><th>signature</th><th>trace</th><th>first input</th><th>inputs</th>\
                 <th>ops (before → after)</th><th>failure</th></tr>\n",
            );
            for c in &self.crashes {
                let _ = writeln!(
                    h,
                    "<tr><td><code>{}</code></td><td><a href=\"{}\">{}</a></td><td class=n>{}</td>\
                     <td class=n>{}</td><td class=n>{} → {}</td><td><code>{}</code></td></tr>",
                    esc(&c.signature),
                    esc(&c.file),
                    esc(&c.file),
                    c.first_input,
                    c.count,
                    c.ops_before_minimise,
                    c.ops_after_minimise,
                    esc(&c.failure)
                );
            }
            h.push_str("</table>\n");
        }
        h.push_str("</body></html>\n");
        h
    }
}

/// An HTML table: numbers right-aligned, everything escaped.
pub(super) fn table(
    h: &mut String,
    title: &str,
    head: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
) {
    let _ = write!(h, "<h2>{}</h2>\n<table>", esc(title));
    if head.iter().any(|c| !c.is_empty()) {
        h.push_str("<tr>");
        for c in head {
            let _ = write!(h, "<th>{}</th>", esc(c));
        }
        h.push_str("</tr>");
    }
    h.push('\n');
    for row in rows {
        h.push_str("<tr>");
        for c in row {
            let num = !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            let _ = write!(
                h,
                "<td{}>{}</td>",
                if num { " class=n" } else { "" },
                esc(&c)
            );
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</table>\n");
}

pub(super) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
