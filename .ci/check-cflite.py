#!/usr/bin/env python3
"""Checks the continuous-fuzzing files for syntax and for what ClusterFuzzLite and OSS-Fuzz
read from them (docs/CONTINUOUS-FUZZING.md); run by .ci/oss-fuzz-check.sh. Prints one line
per file checked and every problem found; exits 1 when there is any.

    python3 .ci/check-cflite.py [REPO_ROOT]
"""
import configparser, glob, os, re, sys

import yaml  # PyYAML; .ci/oss-fuzz-check.sh installs it when missing

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = "google/clusterfuzzlite/actions/build_fuzzers@"
RUN = "google/clusterfuzzlite/actions/run_fuzzers@"
MODES = {"code-change", "batch", "prune", "coverage"}
# The inputs the two actions declare (their action.yml); anything else is a typo that
# GitHub only warns about.
BUILD_INPUTS = {"language", "dry-run", "allowed-broken-targets-percentage", "sanitizer",
                "project-src-path", "bad-build-check", "storage-repo", "storage-repo-branch",
                "storage-repo-branch-coverage", "upload-build", "github-token",
                "keep-unaffected-fuzz-targets", "output-sarif"}
RUN_INPUTS = {"language", "fuzz-seconds", "dry-run", "sanitizer", "mode", "github-token",
              "storage-repo", "storage-repo-branch", "storage-repo-branch-coverage",
              "report-unreproducible-crashes", "output-sarif", "report-timeouts",
              "report-ooms", "minimize-crashes", "parallel-fuzzing"}
# Rust: libFuzzer with ASan, plus coverage builds.
SANITIZERS = {"address", "coverage"}

problems = []


def bad(where, what):
    problems.append(f"{where}: {what}")


def rel(p):
    return os.path.relpath(p, ROOT)


def sanitizers_of(value, job, where):
    """The sanitizers a `sanitizer:` input stands for (a matrix expression expands)."""
    m = re.fullmatch(r"\$\{\{\s*matrix\.(\w+)\s*\}\}", str(value))
    if not m:
        return [str(value)]
    values = ((job.get("strategy") or {}).get("matrix") or {}).get(m.group(1))
    if not isinstance(values, list) or not values:
        bad(where, f"sanitizer {value} names no matrix list")
        return []
    return [str(v) for v in values]


def check_workflow(path, modes_seen):
    where = rel(path)
    with open(path) as f:
        doc = yaml.safe_load(f)  # a syntax error raises, with line and column
    if not isinstance(doc, dict):
        return bad(where, "not a mapping")
    # YAML 1.1 reads the key `on` as the boolean true.
    triggers = doc.get("on", doc.get(True))
    if isinstance(triggers, str):
        triggers = {triggers: None}
    if not isinstance(triggers, dict) or not triggers:
        return bad(where, "no `on:` triggers")
    for key in ("name", "jobs"):
        if key not in doc:
            bad(where, f"no `{key}:`")
    for cron in triggers.get("schedule") or []:
        if not re.fullmatch(r"\S+( \S+){4}", str((cron or {}).get("cron", ""))):
            bad(where, f"schedule entry {cron} is not a 5-field cron")
    jobs = doc.get("jobs") or {}
    if not isinstance(jobs, dict) or not jobs:
        return bad(where, "no jobs")
    for name, job in jobs.items():
        jw = f"{where}: job {name}"
        if "runs-on" not in job:
            bad(jw, "no runs-on")
        steps = job.get("steps") or []
        builds = [(i, s) for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(BUILD)]
        runs = [(i, s) for i, s in enumerate(steps) if str(s.get("uses", "")).startswith(RUN)]
        if len(builds) != 1 or len(runs) != 1:
            bad(jw, f"needs one build_fuzzers step then one run_fuzzers step, has {len(builds)} and {len(runs)}")
            continue
        (bi, build), (ri, run) = builds[0], runs[0]
        if bi > ri:
            bad(jw, "run_fuzzers comes before build_fuzzers")
        bwith, rwith = build.get("with") or {}, run.get("with") or {}
        for step, given, known in (("build_fuzzers", bwith, BUILD_INPUTS), ("run_fuzzers", rwith, RUN_INPUTS)):
            for k in sorted(set(given) - known):
                bad(jw, f"{step} has no input `{k}`")
            if given.get("language") != "rust":
                bad(jw, f"{step} needs `language: rust` (default c++), has {given.get('language')!r}")
        mode = rwith.get("mode", "code-change")
        if mode not in MODES:
            bad(jw, f"mode {mode!r} is not one of {sorted(MODES)}")
        modes_seen.add(mode)
        secs = rwith.get("fuzz-seconds")
        if not isinstance(secs, int) or secs <= 0:
            bad(jw, f"fuzz-seconds {secs!r} is not a positive number of seconds")
        if "secrets.GITHUB_TOKEN" not in str(rwith.get("github-token", "")):
            bad(jw, "run_fuzzers needs github-token: ${{ secrets.GITHUB_TOKEN }}")
        bsan = sanitizers_of(bwith.get("sanitizer", "address"), job, jw)
        rsan = sanitizers_of(rwith.get("sanitizer", "address"), job, jw)
        if bsan != rsan:
            bad(jw, f"built with sanitizer {bsan} but run with {rsan}")
        for s in bsan:
            if s not in SANITIZERS:
                bad(jw, f"sanitizer {s!r}: Rust builds only {sorted(SANITIZERS)}")
            if (s == "coverage") != (mode == "coverage"):
                bad(jw, f"mode {mode} with sanitizer {s}: coverage mode needs the coverage build and only it")
        if mode == "code-change" and "pull_request" not in triggers:
            bad(jw, "code-change fuzzing without a pull_request trigger")
        if mode in ("batch", "prune", "coverage") and "schedule" not in triggers:
            bad(jw, f"{mode} without a schedule trigger")
    print(f"ok  {where}" if not any(p.startswith(where) for p in problems) else f"BAD {where}")


def check_project_yaml(path, full):
    where = rel(path)
    with open(path) as f:
        doc = yaml.safe_load(f)
    if not isinstance(doc, dict) or doc.get("language") != "rust":
        bad(where, "needs `language: rust`")
        return
    for key, allowed in (("sanitizers", {"address"}), ("fuzzing_engines", {"libfuzzer"})):
        got = doc.get(key)
        if full and not got:
            bad(where, f"OSS-Fuzz's file lists {key}")
        if got and not set(got) <= allowed:
            bad(where, f"{key} {got}: Rust supports {sorted(allowed)} only")
    print(f"ok  {where}" if not any(p.startswith(where) for p in problems) else f"BAD {where}")


def check_dockerfile(path, build_line):
    where = rel(path)
    text = open(path).read()
    if not re.search(r"^FROM gcr\.io/oss-fuzz-base/base-builder-rust\b", text, re.M):
        bad(where, "not FROM the base-builder-rust image")
    if not re.search(build_line, text, re.M):
        bad(where, "does not put oss-fuzz/build.sh at $SRC/build.sh")
    print(f"ok  {where}" if not any(p.startswith(where) for p in problems) else f"BAD {where}")


def check_options(path):
    where = rel(path)
    c = configparser.ConfigParser()
    try:
        c.read(path)
    except configparser.Error as e:
        return bad(where, f"not INI: {e}")
    if c.sections() != ["libfuzzer"]:
        bad(where, f"needs exactly a [libfuzzer] section, has {c.sections()}")
    for k, v in (c["libfuzzer"].items() if c.has_section("libfuzzer") else []):
        if not re.fullmatch(r"[a-z_]+", k) or not re.fullmatch(r"-?\d+", v):
            bad(where, f"`{k} = {v}` is not a libFuzzer flag with a number")
    print(f"ok  {where}" if not any(p.startswith(where) for p in problems) else f"BAD {where}")


def main():
    wf = sorted(glob.glob(os.path.join(ROOT, ".github/workflows/cflite_*.yml")))
    if not wf:
        bad(".github/workflows", "no cflite_*.yml workflows")
    modes = set()
    for p in wf:
        try:
            check_workflow(p, modes)
        except yaml.YAMLError as e:
            bad(rel(p), f"YAML syntax: {e}")
    for m in sorted(MODES - modes):
        bad(".github/workflows", f"no workflow runs ClusterFuzzLite's {m} mode")
    for p, full in ((".clusterfuzzlite/project.yaml", False), ("oss-fuzz/project.yaml", True)):
        try:
            check_project_yaml(os.path.join(ROOT, p), full)
        except (OSError, yaml.YAMLError) as e:
            bad(p, str(e))
    for p, line in ((".clusterfuzzlite/Dockerfile", r"^COPY oss-fuzz/build\.sh \$SRC/build\.sh$"),
                    ("oss-fuzz/Dockerfile", r"^RUN ln -s \$SRC/ptfuzz/oss-fuzz/build\.sh \$SRC/build\.sh$")):
        try:
            check_dockerfile(os.path.join(ROOT, p), line)
        except OSError as e:
            bad(p, str(e))
    for p in sorted(glob.glob(os.path.join(ROOT, "oss-fuzz/*.options"))):
        check_options(p)
    if os.path.exists(os.path.join(ROOT, ".clusterfuzzlite/build.sh")):
        bad(".clusterfuzzlite/build.sh", "a second build script: both images use oss-fuzz/build.sh")
    for p in problems:
        print(f"!!! {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
