//! The campaign's report files: `report.json` for tools and `index.html`, one self-contained
//! page (inline SVG plots drawn with plotters, no scripts, nothing fetched) for people.
//! Both come from the same [`CampaignReport`].

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::multi::CampaignReport;
use super::report::{esc, table};

/// Writes `report.json` and `index.html` into `dir`.
pub fn write(r: &CampaignReport, dir: &Path) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(r).map_err(io::Error::other)?;
    std::fs::write(dir.join("report.json"), json + "\n")?;
    std::fs::write(dir.join("index.html"), html(r)?)
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(23, 190, 207),
];

/// One line per series over the campaign's seconds.
fn line_plot(
    title: &str,
    y_desc: &str,
    series: &[(String, Vec<(f64, f64)>)],
) -> io::Result<String> {
    let err =
        |e: DrawingAreaErrorKind<std::io::Error>| io::Error::other(format!("plot {title}: {e:?}"));
    let x_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.0))
        .fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|q| q.1))
        .fold(1.0, f64::max)
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .y_desc(y_desc)
            .draw()
            .map_err(err)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = COLORS[i % COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

fn html(r: &CampaignReport) -> io::Result<String> {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>ptfuzz campaign, seed {}</title>\n\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}\
         table{{border-collapse:collapse;margin-bottom:1.5em}}\
         td,th{{border:1px solid #bbb;padding:.2em .6em;text-align:left;vertical-align:top}}td.n{{text-align:right}}\
         pre{{background:#f6f6f6;padding:.5em;font-size:85%;max-height:24em;overflow:auto}}\
         code{{font-size:90%}}.plot{{margin:1em 0}}</style></head><body>\n\
         <h1>ptfuzz campaign</h1>\n<p>{:.1} s on {} worker(s), seed {}. Engine: {}.</p>\n",
        r.seed,
        r.seconds,
        r.workers,
        r.seed,
        match r.engine {
            super::multi::Engine::Libfuzzer => "libFuzzer through cargo-fuzz (coverage-guided, fork mode)",
            super::multi::Engine::Afl => "AFL++ through cargo-afl (coverage-guided, main and secondaries per target)",
            _ => "the built-in swarm (no coverage feedback: swarm inputs for pagetable, prealloc and qemu_diff, edited seeds for ioasid)",
        }
    );

    // Summary per target.
    let rows = r.targets.iter().map(|t| {
        vec![
            t.target.to_string(),
            t.engine.clone(),
            t.seeds.to_string(),
            t.inputs.to_string(),
            format!("{:.0}", t.exec_per_sec),
            t.crashing_inputs.to_string(),
            t.unique_crashes.to_string(),
            t.skipped
                .clone()
                .map_or_else(|| "ran".into(), |why| format!("skipped: {why}")),
        ]
    });
    h.push_str("<div id=\"summary\">");
    table(
        &mut h,
        "Targets",
        &[
            "target",
            "engine",
            "seeds",
            "inputs",
            "exec/s",
            "crashing inputs",
            "unique crashes",
            "status",
        ],
        rows,
    );
    match (&r.coverage, &r.coverage_note) {
        (Some(c), _) => {
            let _ = writeln!(
                h,
                "<p id=\"line-coverage\">Engine line coverage: <b>{:.1} %</b> ({} of {} lines of \
                 <code>engine/src</code>), from <code>cargo fuzz coverage</code> over {}: \
                 <a href=\"{}\">line-by-line report</a>.</p>",
                c.total.percent(),
                c.total.covered,
                c.total.count,
                esc(&c
                    .inputs
                    .iter()
                    .map(|(t, w)| format!("{t}: {w}"))
                    .collect::<Vec<_>>()
                    .join("; ")),
                esc(&c.html)
            );
        }
        (None, Some(why)) => {
            let _ = writeln!(
                h,
                "<p id=\"line-coverage\">Engine line coverage: {}</p>",
                esc(why)
            );
        }
        (None, None) => {}
    }
    h.push_str("</div>\n");

    // Plots.
    let ran: Vec<_> = r.targets.iter().filter(|t| t.skipped.is_none()).collect();
    let series = |f: &dyn Fn(&super::multi::Sample) -> f64| -> Vec<(String, Vec<(f64, f64)>)> {
        ran.iter()
            .map(|t| {
                (
                    t.target.to_string(),
                    t.samples.iter().map(|s| (s.seconds, f(s))).collect(),
                )
            })
            .collect()
    };
    let _ = write!(
        h,
        "<h2>Over time</h2>\n<div class=\"plot\" id=\"plot-exec\">{}</div>\n<div class=\"plot\" id=\"plot-crashes\">{}</div>\n",
        line_plot("executions per second, by target", "exec/s", &series(&|s| s.exec_per_sec))?,
        line_plot("unique crashes, by target", "unique crashes", &series(&|s| s.unique_crashes as f64))?,
    );

    if ran
        .iter()
        .any(|t| t.samples.iter().any(|s| s.coverage.is_some()))
    {
        let _ = writeln!(
            h,
            "<div class=\"plot\" id=\"plot-coverage\">{}</div>",
            line_plot(
                "coverage, by target",
                "edges (libFuzzer cov, AFL edges_found)",
                &series(&|s| s.coverage.unwrap_or(0) as f64)
            )?
        );
    }

    // Crashes.
    h.push_str("<h2 id=\"crashes\">Crashes</h2>\n");
    if r.crashes.is_empty() {
        h.push_str("<p>No crash: every oracle agreed on every input.</p>\n");
    } else {
        h.push_str(
            "<table id=\"crash-table\"><tr><th>target</th><th>finding</th><th>signature</th><th>first seen</th><th>inputs</th>\
             <th>ops (before → after minimising)</th><th>reproduces</th><th>minimised trace</th></tr>\n",
        );
        for c in &r.crashes {
            let input = c.input_file.as_ref().map_or(String::new(), |f| {
                format!("<br>input: <a href=\"{0}\">{0}</a>", esc(f))
            });
            let file = esc(&c.record.file);
            let _ = writeln!(
                h,
                "<tr><td>{target}</td><td><code>{kind}</code></td><td><code>{sig}</code></td><td class=n>{seen:.1} s</td><td class=n>{count}</td>\
                 <td class=n>{before} → {after}</td><td>{repro}</td><td><a href=\"{file}\">{file}</a>{input}<br>\
                 regression, once fixed: <code>cp {file} corpus/regressions/</code><pre>{text}</pre></td></tr>",
                target = c.target,
                kind = esc(c.record.kind.as_deref().unwrap_or("-")),
                sig = esc(&c.record.signature),
                seen = c.first_seen,
                count = c.record.count,
                before = c.record.ops_before_minimise,
                after = c.record.ops_after_minimise,
                repro = if c.record.reproduces { "yes, twice" } else { "no" },
                text = esc(&c.text),
            );
        }
        h.push_str("</table>\n");
    }

    // What the oracles checked.
    let o = &r.oracles;
    let rows = [
        ("domains created and checked", o.domains),
        ("commands compared, engine against model", o.ops),
        (
            "TLB / walk-cache entries made stale, each checked for its invalidation",
            o.tlb_breaks,
        ),
        ("of those, walk-cache (table) entries", o.tlb_table_breaks),
        ("invalidations replayed", o.invalidations),
        (
            "table frees checked against unlink and invalidation",
            o.table_frees_checked,
        ),
        ("frame-accounting checks (one per op)", o.frame_checks),
        (
            "frames accounted for (summed over checks)",
            o.frames_accounted,
        ),
        ("freed frames checked for poison", o.poison_checked),
        ("jobs prepared (budget checker)", o.jobs_prepared),
        ("jobs run", o.jobs_run),
        ("pages reserved into job pools", o.pages_reserved),
        ("pages jobs used", o.pages_used),
    ];
    h.push_str("<div id=\"oracles\">");
    table(
        &mut h,
        "What the oracles checked",
        &["check", "count"],
        rows.iter().map(|(k, v)| vec![k.to_string(), v.to_string()]),
    );
    h.push_str("</div>\n");

    if let Some(c) = &r.coverage {
        h.push_str("<div id=\"engine-coverage\">");
        table(
            &mut h,
            "Engine line coverage by file",
            &["file", "lines", "covered", "%"],
            c.files.iter().map(|(f, l)| {
                vec![
                    f.clone(),
                    l.count.to_string(),
                    l.covered.to_string(),
                    format!("{:.1}", l.percent()),
                ]
            }),
        );
        h.push_str("</div>\n");
    }

    // Configuration coverage and outcomes.
    let configs = r.configurations();
    table(
        &mut h,
        "Configurations (domain of each input)",
        &["format/granule[/options]", "inputs"],
        configs.iter().map(|(k, v)| vec![k.clone(), v.to_string()]),
    );
    let outcomes = r.stats.iter().flat_map(|(t, s)| {
        s.outcomes.iter().flat_map(move |(w, m)| {
            m.iter()
                .map(move |(o, n)| vec![t.to_string(), w.clone(), o.clone(), n.to_string()])
        })
    });
    table(
        &mut h,
        "Outcomes",
        &["target", "command", "outcome", "count"],
        outcomes,
    );
    h.push_str("</body></html>\n");
    Ok(h)
}
