//! The campaign report as a person sees it: a short campaign over two targets, its page
//! opened in headless Chromium (Debian's package, installed by .ci/install-chromium.sh when
//! missing; never skipped), a screenshot taken, and the rendered page checked for its
//! tables and plots.

use std::path::{Path, PathBuf};
use std::process::Command;

use ptfuzz_harness::campaign::multi::{run_campaign, CampaignConfig, CampaignReport, CoverageMode};
use ptfuzz_harness::target::TargetName;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> String {
    let out = Command::new("bash")
        .arg(root().join(".ci/install-chromium.sh"))
        .output()
        .expect("bash runs .ci/install-chromium.sh");
    assert!(
        out.status.success(),
        "Chromium is missing and .ci/install-chromium.sh could not install it:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("a path")
        .trim()
        .to_string()
}

/// Runs Chromium headless on `page` with the flags this closed network needs.
fn browse(browser: &str, page: &Path, extra: &[&str]) -> std::process::Output {
    let profile = page.parent().unwrap().join("chromium-profile");
    Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1800",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts")
}

fn campaign(out: &Path) -> CampaignReport {
    let mut cfg = CampaignConfig::new(3, 3, out.to_path_buf());
    cfg.targets = vec![TargetName::Pagetable, TargetName::Ioasid];
    cfg.workers = 2;
    cfg.progress = false;
    cfg.corpus = root().join("corpus");
    cfg.root = root();
    // Line coverage needs an instrumented build of its own (minutes); the page says so.
    cfg.coverage = CoverageMode::Off;
    run_campaign(&cfg).expect("the campaign runs")
}

#[test]
fn the_report_page_renders_its_tables_and_plots() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-page");
    let _ = std::fs::remove_dir_all(&out);
    let report = campaign(&out);
    assert_eq!(report.targets.len(), 2);
    for t in &report.targets {
        assert!(t.inputs > 50, "{} ran only {} inputs", t.target, t.inputs);
        assert!(
            t.samples.len() >= 2,
            "{}: {} samples",
            t.target,
            t.samples.len()
        );
    }
    // Every LPAE op has its frames accounted; armv7s ops (no frame accounting yet,
    // docs/SEMANTICS.md) are the difference.
    let o = &report.oracles;
    assert!(o.ops > 0 && o.frame_checks > 0 && o.frame_checks <= o.ops);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
            .expect("report.json parses");
    assert_eq!(json["targets"][0]["target"], "pagetable");

    let browser = chromium();
    let page = out.join("index.html");
    let shot = out.join("screenshot.png");
    let o = browse(
        &browser,
        &page,
        &[&format!("--screenshot={}", shot.display())],
    );
    assert!(
        o.status.success(),
        "chromium --screenshot failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let png = std::fs::read(&shot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    assert!(
        png.len() > 20_000,
        "a {} byte screenshot is too small for the page",
        png.len()
    );

    // The DOM as the browser built it: both plots drawn (polylines inside the SVGs), the
    // summary with a row per target, the oracle table.
    let o = browse(&browser, &page, &["--dump-dom"]);
    assert!(o.status.success());
    let dom = String::from_utf8_lossy(&o.stdout);
    for id in ["summary", "plot-exec", "plot-crashes", "oracles", "crashes"] {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "rendered page lacks #{id}"
        );
    }
    let exec_plot = dom
        .split("id=\"plot-exec\"")
        .nth(1)
        .unwrap()
        .split("id=\"plot-crashes\"")
        .next()
        .unwrap();
    assert!(exec_plot.contains("<svg"), "the exec/s plot is not an SVG");
    assert!(
        exec_plot.matches("<polyline").count() >= 2,
        "the exec/s plot has no line per target"
    );
    for t in ["pagetable", "ioasid"] {
        assert!(
            dom.contains(&format!("<td>{t}</td>")),
            "the summary has no row for {t}"
        );
    }
    assert!(dom.contains("What the oracles checked"));
    assert!(
        dom.contains("id=\"line-coverage\"") && dom.contains("not measured (--coverage off)"),
        "the page does not say whether line coverage was measured"
    );
}
