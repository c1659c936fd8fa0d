//! A throwaway PostgreSQL server for the tests and `cargo xtask scale-bench`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use danas_search::stats::median;

use crate::{is_root, run, target_dir};

/// The directory of Debian's PostgreSQL server binaries (`initdb`, `pg_ctl`), newest first.
pub(crate) fn pg_bin() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|d| d.join("pg_ctl").is_file() && d.join("initdb").is_file())
        .collect();
    dirs.sort();
    dirs.pop()
}

/// A throwaway PostgreSQL server on loopback, its data in a temp directory; stopped
/// and removed on drop. As root, the server runs as Debian's `postgres` user (it
/// refuses to run as root).
pub(crate) struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    pub(crate) url: String,
}

/// `program` as the server's owner: Debian's `postgres` user when root (PostgreSQL
/// refuses to run as root), else the current user.
fn as_owner(program: PathBuf) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PgServer {
    pub(crate) fn start() -> Result<Self> {
        let bin =
            pg_bin().context("no PostgreSQL server binaries in /usr/lib/postgresql (apt-get install postgresql)")?;
        let dir = std::env::temp_dir().join(format!("danas-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        if is_root() {
            run(Command::new("chown").args(["postgres"]).arg(&dir))?;
        }
        let data = dir.join("data");
        run(as_owner(bin.join("initdb")).arg("-D").arg(&data).args(["-A", "trust", "-U", "danas", "-E", "UTF8"]))?;
        let port = 20000 + std::process::id() % 20000;
        let opts = format!("-c listen_addresses=127.0.0.1 -p {port} -k {}", dir.display());
        run(as_owner(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("server.log"))
            .args(["-w", "start"]))?;
        Ok(Self { bin, dir, url: format!("postgres://danas@127.0.0.1:{port}/postgres") })
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_owner(self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `cargo xtask scale-bench [--trials N] [--reps N]`: the demo search (synthetic data,
/// `demo` space, the default settings, no final stage) as a shared PostgreSQL study,
/// with 1 worker and with 2, alternating, on the release binary; prints trials per
/// minute (evaluated trials over the search's wall time, supernet training included),
/// the medians and their ratio.
pub(crate) fn bench(root: &std::path::Path, args: &[String]) -> Result<()> {
    let num = |flag: &str, default: u64| -> Result<u64> {
        match args.iter().position(|a| a == flag) {
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).with_context(|| format!("{flag} needs a number")),
            None => Ok(default),
        }
    };
    let (trials, reps) = (num("--trials", 30)?, num("--reps", 2)?);
    run(Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())).args([
        "build",
        "--release",
        "-q",
        "-p",
        "danas-cli",
    ]))?;
    let danas = target_dir(root).join("release/danas");
    let pg = PgServer::start()?;
    let tmp = std::env::temp_dir().join(format!("danas-scale-bench-{}", std::process::id()));
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for rep in 0..reps {
        for workers in [1usize, 2] {
            let study = format!("bench_{rep}_{workers}_{}", std::process::id());
            let out = tmp.join(&study);
            let start = Instant::now();
            let mut search = Command::new(&danas)
                .args(["search", "--quiet", "--final-top-k", "0", "--parallel", "2", "--max-trials"])
                .arg(trials.to_string())
                .args(["--storage", &pg.url, "--study", &study, "--out"])
                .arg(&out)
                .stdout(Stdio::null())
                .spawn()?;
            let mut ws = Vec::new();
            for w in 0..workers {
                ws.push(
                    Command::new(&danas)
                        .args(["worker", "--quiet", "--storage", &pg.url, "--study", &study, "--cache"])
                        .arg(tmp.join(format!("cache-{study}-{w}")))
                        .spawn()?,
                );
            }
            let status = search.wait()?;
            let seconds = start.elapsed().as_secs_f64();
            for mut w in ws {
                w.wait()?;
            }
            if !status.success() {
                bail!("the search of {study} failed");
            }
            let rate = trials as f64 / (seconds / 60.0);
            eprintln!("rep {rep}, {workers} worker(s): {trials} trials in {seconds:.1} s, {rate:.1} trials/min");
            rates[workers - 1].push(rate);
        }
    }
    let (one, two) = (median(&rates[0]), median(&rates[1]));
    println!("trials per minute (median of {reps}): 1 worker {one:.1}, 2 workers {two:.1}; ratio {:.2}", two / one);
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}
