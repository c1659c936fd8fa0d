//! `cargo xtask`: the commands CI and developers run.
//!
//! - `cargo xtask ci`: everything CI checks (system packages, Python venvs for test
//!   clients, fmt, clippy, tests, rustdoc, examples).
//! - `cargo xtask setup`: only the system packages and venvs.
//! - `cargo xtask bench [NAME…]`: the criterion benches (all, or the named ones).
//! - `cargo xtask bench --peer`: the training step of danas-train beside the same
//!   step in PyTorch CPU (a venv it creates), in one run, with their ratio.
//! - `cargo xtask repro EXPERIMENT --scale tiny|cpu|paper [--seeds N] [--out DIR]
//!   [--dry-run]`: the paper reproductions (see `repro/` and `docs/reproducing.md`).
//! - `cargo xtask int8-check [--steps N] [--eval-limit N]`: a Fashion-MNIST network
//!   exported to int8 and run by the real TFLM over the test split (0 LSB against
//!   danas's int8 evaluator, at most 1.5 points below float).
//! - `cargo xtask scale-bench [--trials N] [--reps N]`: trials per minute of a shared
//!   PostgreSQL study with 1 and with 2 workers on this machine (a server it starts).

mod int8;
mod plot;
mod repro;
mod scale;

use scale::{PgServer, pg_bin};

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    std::env::set_current_dir(&root).with_context(|| format!("cannot enter {}", root.display()))?;
    match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("setup") => setup(&root).map(|_| ()),
        Some("bench") if args[1..].iter().any(|a| a == "--peer") => peer(&root, &args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("repro") => repro::repro(&root, &args[1..]),
        Some("int8-check") => int8::int8_check(&root, &args[1..]),
        Some("scale-bench") => scale::bench(&root, &args[1..]),
        Some(other) => bail!("unknown task {other:?}; known: ci, setup, bench, repro, int8-check, scale-bench"),
        None => {
            eprintln!(
                "usage: cargo xtask <ci | setup | bench [NAME...] | bench --peer [--steps N] | repro EXPERIMENT --scale S [--dry-run]>"
            );
            Ok(())
        }
    }
}

fn project_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(Path::to_path_buf).unwrap_or(manifest)
}

/// Runs a command, echoing it, failing with its exit status.
fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("\n$ {}", describe(cmd));
    let status = cmd.status().with_context(|| format!("cannot start {}", describe(cmd)))?;
    if !status.success() {
        bail!("`{}` failed with {status}", describe(cmd));
    }
    Ok(())
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// What the test suite needs outside Cargo, with the environment variables that
/// point the tests at it.
struct Env {
    vars: Vec<(String, String)>,
}

const FASHION_MNIST: &str = "/usr/share/datasets/fashion-mnist";
const TFLM_VENV: &str = ".venv-tflm";
const CHROMIUM: &str = "/usr/bin/chromium";

fn setup(root: &Path) -> Result<Env> {
    let mut vars = Vec::new();
    // Fashion-MNIST from Debian (real data for the idx loader tests), Debian's
    // Chromium (the HTML report's screenshot test) and g++ (the model package's
    // firmware compile test).
    let need_data = !Path::new(FASHION_MNIST).join("train-images-idx3-ubyte.gz").exists();
    let need_chromium = !Path::new(CHROMIUM).exists();
    // espeak-ng and sox: tools/make-speech-set.sh, the spoken clips of the audio tests.
    let need_speech = !Path::new("/usr/bin/espeak-ng").exists() || !Path::new("/usr/bin/sox").exists();
    let need_gxx = Command::new("g++").arg("--version").output().is_err();
    if need_data || need_chromium || need_speech || need_gxx {
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        let apt = |args: &[&str]| {
            let mut all: Vec<&str> = sudo.to_vec();
            all.push("apt-get");
            all.extend_from_slice(args);
            let mut c = Command::new(all[0]);
            c.args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive");
            run(&mut c)
        };
        apt(&["update", "-q"])?;
        apt(&["install", "-y", "-q", "dataset-fashion-mnist", "chromium", "postgresql", "espeak-ng", "sox", "g++"])?;
    } else if pg_bin().is_none() {
        let sudo: &[&str] = if is_root() { &[] } else { &["sudo"] };
        for args in [&["update", "-q"][..], &["install", "-y", "-q", "postgresql"][..]] {
            let mut all: Vec<&str> = sudo.to_vec();
            all.push("apt-get");
            all.extend_from_slice(args);
            run(Command::new(all[0]).args(&all[1..]).env("DEBIAN_FRONTEND", "noninteractive"))?;
        }
    }
    vars.push(("DANAS_FASHION_MNIST".into(), FASHION_MNIST.into()));
    vars.push(("DANAS_CHROMIUM".into(), CHROMIUM.into()));

    // The real TensorFlow Lite Micro interpreter, for the cost model's exactness test.
    let py = python_venv(&root.join(TFLM_VENV), "tflite_micro", &["tflite-micro"])?;
    vars.push(("DANAS_TFLM_PYTHON".into(), py.to_string_lossy().into_owned()));
    Ok(Env { vars })
}

/// A Python venv at `venv` in which `import {modules}` works, installing `packages`
/// with pip when it does not; returns its interpreter.
fn python_venv(venv: &Path, modules: &str, packages: &[&str]) -> Result<PathBuf> {
    let py = venv.join("bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    let probe = Command::new(&py).args(["-c", &format!("import {modules}")]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        run(Command::new(&py).args(["-m", "pip", "install", "-q", "--disable-pip-version-check"]).args(packages))?;
    }
    Ok(py)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn ci(root: &Path) -> Result<()> {
    disk_report(root, "at the start");
    let mut env = setup(root)?;
    // Tests that need the packages above fail instead of skipping.
    env.vars.push(("CI".into(), "1".into()));
    // A real PostgreSQL server for the shared-study tests, stopped when CI ends.
    let pg = PgServer::start()?;
    env.vars.push(("DANAS_POSTGRES_URL".into(), pg.url.clone()));
    run(ci_cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(ci_cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut test = ci_cargo();
    test.args(["test", "--workspace"]);
    for (k, v) in &env.vars {
        test.env(k, v);
    }
    run(&mut test)?;
    run(ci_cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    // An int8 export of a (briefly) trained Fashion-MNIST network in the real TFLM:
    // 0 LSB against danas's int8 evaluator, at most 1.5 points below float.
    let debug_danas = target_dir(root).join("debug/danas");
    let mut q = Command::new(std::env::current_exe()?);
    q.args(["int8-check", "--danas"]).arg(&debug_danas).args(["--steps", "150", "--eval-limit", "1000"]);
    q.arg("--out").arg(target_dir(root).join("int8-check-ci"));
    run(&mut q)?;
    // `cargo test --workspace` built every example with the workspace's features;
    // run those binaries rather than `cargo run -p`, which would rebuild the
    // dependencies with one package's features.
    let bin_dir = target_dir(root).join("debug/examples");
    for (package, example) in examples(root)? {
        let exe = bin_dir.join(&example);
        let mut c = if exe.is_file() {
            Command::new(&exe)
        } else {
            let mut c = ci_cargo();
            c.args(["run", "-q", "-p", &package, "--example", &example]);
            c
        };
        for (k, v) in &env.vars {
            c.env(k, v);
        }
        run(&mut c)?;
    }
    // The GPU backends compile (no GPU needed). DOCS_RS keeps cubecl's build scripts
    // from downloading an LLVM toolchain, which this offline machine cannot.
    run(ci_cargo().args(["check", "-q", "-p", "danas-train", "--features", "cuda,wgpu"]).env("DOCS_RS", "1"))?;
    // The facade without the trainer: no deep-learning stack, still compiles.
    run(ci_cargo().args(["check", "-q", "-p", "danas", "--no-default-features", "--lib"]))?;
    // The paper reproduction: the plan at paper scale, and a tiny end-to-end run
    // whose outputs are checked for completeness (not for any claim).
    let danas = target_dir(root).join("debug/danas");
    run(Command::new(std::env::current_exe()?).args(["repro", "data-vs-hw", "--scale", "paper", "--dry-run"]))?;
    let repro_out = target_dir(root).join("repro-ci/data-vs-hw-tiny");
    let _ = std::fs::remove_dir_all(&repro_out);
    let mut r = Command::new(std::env::current_exe()?);
    r.args(["repro", "data-vs-hw", "--scale", "tiny", "--danas"]).arg(&danas).arg("--out").arg(&repro_out);
    run(&mut r)?;
    disk_report(root, "at the end");
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
}

/// Cargo for CI's steps: a clean clone builds once, so incremental compilation
/// would only add its caches (gigabytes for this workspace) to the disk CI needs.
fn ci_cargo() -> Command {
    let mut c = cargo();
    c.env("CARGO_INCREMENTAL", "0");
    c
}

/// Prints the free disk space and the target directory's size (diagnostics only:
/// a CI machine short of disk fails in the linker, far from the cause).
fn disk_report(root: &Path, when: &str) {
    let target = target_dir(root);
    let probe = if target.exists() { target.clone() } else { root.to_path_buf() };
    let text = |c: &mut Command| {
        c.output().ok().filter(|o| o.status.success()).map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let free = text(Command::new("df").args(["-h", "--output=avail"]).arg(&probe))
        .and_then(|t| t.lines().last().map(|l| l.trim().to_string()));
    let used = if target.exists() {
        text(Command::new("du").args(["-sh"]).arg(&target)).and_then(|t| t.split_whitespace().next().map(String::from))
    } else {
        Some("0".into())
    };
    eprintln!(
        "\nxtask ci: disk {when}: {} free, target directory {} ({})",
        free.as_deref().unwrap_or("?"),
        used.as_deref().unwrap_or("?"),
        target.display()
    );
}

/// Cargo's target directory (`CARGO_TARGET_DIR` or `target/`).
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"))
}

/// Every example of the workspace as (package, example name): the facade's
/// `examples/` and each crate's `crates/*/examples/`.
fn examples(root: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut dirs = vec![("danas".to_string(), root.join("examples"))];
    for entry in std::fs::read_dir(root.join("crates")).context("cannot list crates/")? {
        let entry = entry?;
        dirs.push((entry.file_name().to_string_lossy().into_owned(), entry.path().join("examples")));
    }
    for (package, dir) in dirs {
        let Ok(rd) = std::fs::read_dir(&dir) else { continue };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "rs"))
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        names.sort();
        out.extend(names.into_iter().map(|n| (package.clone(), n)));
    }
    Ok(out)
}

fn bench(names: &[String]) -> Result<()> {
    let mut c = cargo();
    c.args(["bench", "-p", "danas"]);
    for n in names {
        c.args(["--bench", n]);
    }
    run(&mut c)
}

const PEER_VENV: &str = ".venv-peer";

/// `cargo xtask bench --peer [--steps N]`: one training step of MobileNetV2 α 0.35,
/// 3×96×96, batch 32, 2 classes, Adam, in danas-train (burn `flex`) and in PyTorch
/// CPU (torchvision), interleaved in one run; prints both and the ratios. It also
/// runs two danas trainings at once, the way a search uses the machine.
fn peer(root: &Path, args: &[String]) -> Result<()> {
    let steps: usize = match args.iter().position(|a| a == "--steps") {
        Some(i) => args.get(i + 1).context("--steps needs a number")?.parse().context("--steps needs a number")?,
        None => 20,
    };
    let py = python_venv(&root.join(PEER_VENV), "torch, torchvision", &["torch", "torchvision"])?;
    run(cargo().args(["build", "--release", "-q", "-p", "danas-train", "--example", "step_time"]))?;
    let danas = target_dir(root).join("release/examples/step_time");
    let script = root.join("crates/danas-train/tools/peer_step.py");
    let steps_s = steps.to_string();
    let capture = |cmd: &mut Command| -> Result<String> {
        eprintln!("$ {}", describe(cmd));
        let out = cmd.output().with_context(|| format!("cannot start {}", describe(cmd)))?;
        if !out.status.success() {
            bail!("`{}` failed: {}", describe(cmd), String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let images_per_s = |line: &str| -> Option<f64> {
        let i = line.find("\"images_per_s\":")?;
        line[i + 15..].trim_start().split([',', '}']).next()?.trim().parse().ok()
    };
    let mut lines = Vec::new();
    // Interleave: danas, torch 2 threads, torch 1 thread, two danas at once; twice.
    let mut danas1 = Vec::new();
    let mut danas2 = Vec::new();
    let mut torch2 = Vec::new();
    let mut torch1 = Vec::new();
    for round in 0..2 {
        let l = capture(Command::new(&danas).args([&steps_s, "32", "0.35", "--json"]))?;
        danas1.extend(images_per_s(&l));
        lines.push(format!("round {round} danas x1: {l}"));
        for (threads, into) in [("2", &mut torch2), ("1", &mut torch1)] {
            let l = capture(Command::new(&py).arg(&script).args(["--threads", threads, "--steps", &steps_s]))?;
            into.extend(images_per_s(&l));
            lines.push(format!("round {round} torch {threads} thread(s): {l}"));
        }
        let mut a = Command::new(&danas);
        a.args([&steps_s, "32", "0.35", "--json"]).stdout(std::process::Stdio::piped());
        let mut b = Command::new(&danas);
        b.args([&steps_s, "32", "0.35", "--json"]).stdout(std::process::Stdio::piped());
        let (ca, cb) = (a.spawn()?, b.spawn()?);
        let (oa, ob) = (ca.wait_with_output()?, cb.wait_with_output()?);
        let sum: f64 = [oa, ob].iter().filter_map(|o| images_per_s(String::from_utf8_lossy(&o.stdout).trim())).sum();
        danas2.push(sum);
        lines.push(format!("round {round} danas x2 at once: {sum:.1} images/s in all"));
    }
    for l in &lines {
        println!("{l}");
    }
    let med = |v: &mut Vec<f64>| -> f64 {
        v.sort_by(f64::total_cmp);
        if v.is_empty() { f64::NAN } else { v[v.len() / 2] }
    };
    let (d1, d2, t2, t1) = (med(&mut danas1), med(&mut danas2), med(&mut torch2), med(&mut torch1));
    println!("\ntraining step, MobileNetV2 a0.35, 3x96x96, batch 32, Adam ({steps} steps per run, 2 rounds):");
    println!("  danas (burn flex), one training:       {d1:7.1} images/s");
    println!("  danas, two trainings at once (machine): {d2:7.1} images/s");
    println!("  PyTorch CPU, 2 threads:                {t2:7.1} images/s");
    println!("  PyTorch CPU, 1 thread:                 {t1:7.1} images/s");
    println!("  ratio danas machine / PyTorch 2 threads: {:.2}", d2 / t2);
    println!("  ratio danas one / PyTorch 1 thread:      {:.2}", d1 / t1);
    Ok(())
}
