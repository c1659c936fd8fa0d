//! `cargo xtask`: the commands CI and developers run.
//!
//! - `cargo xtask ci`: everything CI checks (system packages, Python venvs for test
//!   clients, fmt, clippy, tests, rustdoc, examples).
//! - `cargo xtask setup`: only the system packages and venvs.
//! - `cargo xtask bench [NAME…]`: the criterion benches (all, or the named ones).

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
        Some("bench") => bench(&args[1..]),
        Some(other) => bail!("unknown task {other:?}; known: ci, setup, bench"),
        None => {
            eprintln!("usage: cargo xtask <ci | setup | bench [NAME...]>");
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

fn setup(root: &Path) -> Result<Env> {
    let mut vars = Vec::new();
    // Fashion-MNIST from Debian (real data for the idx loader tests).
    if !Path::new(FASHION_MNIST).join("train-images-idx3-ubyte.gz").exists() {
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
        apt(&["install", "-y", "-q", "dataset-fashion-mnist"])?;
    }
    vars.push(("DANAS_FASHION_MNIST".into(), FASHION_MNIST.into()));

    // The real TensorFlow Lite Micro interpreter, for the cost model's exactness test.
    let venv = root.join(TFLM_VENV);
    let py = venv.join("bin/python");
    if !py.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let probe = Command::new(&py).args(["-c", "import tflite_micro"]).output();
    if !probe.map(|o| o.status.success()).unwrap_or(false) {
        run(Command::new(&py).args(["-m", "pip", "install", "-q", "--disable-pip-version-check", "tflite-micro"]))?;
    }
    vars.push(("DANAS_TFLM_PYTHON".into(), py.to_string_lossy().into_owned()));
    Ok(Env { vars })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn ci(root: &Path) -> Result<()> {
    let env = setup(root)?;
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))?;
    let mut test = cargo();
    test.args(["test", "--workspace"]);
    for (k, v) in &env.vars {
        test.env(k, v);
    }
    run(&mut test)?;
    run(cargo().args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))?;
    for (package, example) in examples(root)? {
        let mut c = cargo();
        c.args(["run", "-q", "-p", &package, "--example", &example]);
        for (k, v) in &env.vars {
            c.env(k, v);
        }
        run(&mut c)?;
    }
    eprintln!("\nxtask ci: all checks passed");
    Ok(())
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
