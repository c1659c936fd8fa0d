//! Wake Vision: one metadata CSV per split plus JPEGs in `.tar.gz` archives (streamed, never
//! extracted to disk) or in an extracted directory tree.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::DataError;
use crate::source::{Catalog, Fnv, RawImage, Record, Sink, Skipped, Source, file_stamp};

/// A Wake Vision directory: `*.csv` metadata files whose names tell the split
/// (`train_quality`, `train_large`, `validation`, `test`), with columns `filename`, `person`
/// and any number of fine-grained flag columns (`depiction`, `body_part`, `near`, `dark`, …:
/// 1, 0, or −1/empty for unknown). Rows with `person` = −1 or empty are excluded. Images are
/// JPEG files anywhere below the directory, or members of `*.tar.gz` / `*.tgz` archives
/// anywhere below it, matched to rows by file name.
#[derive(Debug, Clone)]
pub struct WakeVisionSource {
    dir: PathBuf,
}

/// Everything found below the directory.
struct Listing {
    csvs: Vec<(String, PathBuf)>,
    archives: Vec<PathBuf>,
    files: HashMap<String, PathBuf>,
    stamp: Fnv,
}

fn split_of_csv(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    if n.contains("train_quality") || n.contains("train-quality") {
        Some("train_quality")
    } else if n.contains("train_large") || n.contains("train-large") {
        Some("train_large")
    } else if n.contains("validation") || n.contains("_val") || n.starts_with("val") {
        Some("validation")
    } else if n.contains("test") {
        Some("test")
    } else if n.contains("train") {
        Some("train")
    } else {
        None
    }
}

fn base_name(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

impl WakeVisionSource {
    /// A source reading the Wake Vision files below `dir`.
    ///
    /// # Errors
    /// [`DataError::NotFound`] if `dir` is not a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, DataError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(DataError::NotFound { what: "Wake Vision directory", path: dir });
        }
        Ok(Self { dir })
    }

    fn list(&self) -> Result<Listing, DataError> {
        let mut l = Listing { csvs: vec![], archives: vec![], files: HashMap::new(), stamp: Fnv::default() };
        let mut stack = vec![(self.dir.clone(), 0usize)];
        let mut all = Vec::new();
        while let Some((dir, depth)) = stack.pop() {
            let rd = std::fs::read_dir(&dir).map_err(|e| DataError::io("list", &dir, e))?;
            for entry in rd.flatten() {
                let path = entry.path();
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_dir() {
                    if depth < 6 {
                        stack.push((path, depth + 1));
                    }
                    continue;
                }
                let lower = name.to_ascii_lowercase();
                if lower.ends_with(".csv") {
                    let split = split_of_csv(&name).ok_or_else(|| {
                        DataError::format(
                            &path,
                            "cannot tell the split from the CSV file name (expected train_quality, train_large, \
                             validation or test in it)",
                        )
                    })?;
                    l.csvs.push((split.to_string(), path.clone()));
                    all.push((path, meta));
                } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
                    l.archives.push(path.clone());
                    all.push((path, meta));
                } else if super::folder::is_image_name(&name) {
                    l.files.insert(name, path);
                }
            }
        }
        if l.csvs.is_empty() {
            return Err(DataError::NotFound {
                what: "Wake Vision metadata CSV (e.g. wake_vision_validation.csv) in",
                path: self.dir.clone(),
            });
        }
        l.csvs.sort();
        l.archives.sort();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let mut fp = Fnv::default().str("wake-vision-v1").u64(l.files.len() as u64);
        for (p, m) in &all {
            fp = file_stamp(fp, p, m);
        }
        l.stamp = fp;
        Ok(l)
    }
}

fn parse_flag(v: &str) -> i8 {
    match v.trim().parse::<f64>() {
        Ok(1.0) => 1,
        Ok(0.0) => 0,
        _ => -1,
    }
}

impl Source for WakeVisionSource {
    fn describe(&self) -> String {
        format!("wake-vision:{}", self.dir.display())
    }

    fn catalog(&self) -> Result<Catalog, DataError> {
        let listing = self.list()?;
        let mut cat = Catalog {
            class_names: vec!["no_person".into(), "person".into()],
            fingerprint: listing.stamp.finish(),
            ..Default::default()
        };
        for (split, path) in &listing.csvs {
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_path(path)
                .map_err(|e| DataError::format(path, format!("cannot read CSV: {e}")))?;
            let headers =
                rdr.headers().map_err(|e| DataError::format(path, format!("cannot read CSV header: {e}")))?.clone();
            let col = |name: &str| headers.iter().position(|h| h.trim() == name);
            let fcol = col("filename").ok_or_else(|| DataError::format(path, "missing column `filename`"))?;
            let pcol = col("person").ok_or_else(|| DataError::format(path, "missing column `person`"))?;
            let flag_cols: Vec<(usize, usize)> = headers
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != fcol && i != pcol)
                .map(|(i, h)| {
                    let h = h.trim().to_string();
                    let slot = cat.flag_names.iter().position(|f| *f == h).unwrap_or_else(|| {
                        cat.flag_names.push(h);
                        cat.flag_names.len() - 1
                    });
                    (i, slot)
                })
                .collect();
            for (row_no, row) in rdr.records().enumerate() {
                let line = row_no + 2;
                let row = match row {
                    Ok(r) => r,
                    Err(e) => {
                        cat.skipped.push(Skipped {
                            path: format!("{}:{line}", path.display()),
                            reason: format!("bad CSV row: {e}"),
                        });
                        continue;
                    }
                };
                let filename = row.get(fcol).unwrap_or("").trim();
                let person = row.get(pcol).unwrap_or("").trim();
                let label = match person {
                    "" | "-1" | "-1.0" => {
                        cat.excluded += 1;
                        continue;
                    }
                    "1" | "1.0" => 1,
                    "0" | "0.0" => 0,
                    other => {
                        cat.skipped.push(Skipped {
                            path: format!("{}:{line}", path.display()),
                            reason: format!("person = {other:?} is not 0, 1, -1 or empty"),
                        });
                        continue;
                    }
                };
                if filename.is_empty() {
                    cat.skipped
                        .push(Skipped { path: format!("{}:{line}", path.display()), reason: "empty filename".into() });
                    continue;
                }
                let base = base_name(filename);
                let key = match listing.files.get(base) {
                    Some(p) => p.display().to_string(),
                    None if !listing.archives.is_empty() => base.to_string(),
                    None => {
                        cat.skipped.push(Skipped {
                            path: format!("{}:{line}", path.display()),
                            reason: format!("names {filename:?}, which is not below {}", self.dir.display()),
                        });
                        continue;
                    }
                };
                let mut flags = vec![-1i8; cat.flag_names.len()];
                for &(i, slot) in &flag_cols {
                    if let Some(v) = row.get(i) {
                        flags[slot] = parse_flag(v);
                    }
                }
                cat.records.push(Record { key, label, split: Some(split.clone()), flags });
            }
        }
        let nflags = cat.flag_names.len();
        for r in &mut cat.records {
            r.flags.resize(nflags, -1);
        }
        Ok(cat)
    }

    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        let mut in_archives: HashMap<String, Vec<usize>> = HashMap::new();
        for &w in wanted {
            let Some(rec) = catalog.records.get(w) else {
                sink(w, Err("no such record".into()))?;
                continue;
            };
            if Path::new(&rec.key).is_absolute() || rec.key.contains(['/', '\\']) {
                sink(w, std::fs::read(&rec.key).map(RawImage::Encoded).map_err(|e| format!("cannot read: {e}")))?;
            } else {
                in_archives.entry(rec.key.clone()).or_default().push(w);
            }
        }
        if in_archives.is_empty() {
            return Ok(());
        }
        let listing = self.list()?;
        for archive in &listing.archives {
            if in_archives.is_empty() {
                break;
            }
            let file = std::fs::File::open(archive).map_err(|e| DataError::io("open", archive, e))?;
            let gz = flate2::read::GzDecoder::new(std::io::BufReader::with_capacity(1 << 20, file));
            let mut tar = tar::Archive::new(gz);
            let entries = tar.entries().map_err(|e| DataError::io("read archive", archive, e))?;
            for entry in entries {
                // A corrupt archive ends its own stream; the images not yet found are reported
                // as missing below, the other archives are still read.
                let Ok(mut entry) = entry else { break };
                let name = match entry.path() {
                    Ok(p) => p.to_string_lossy().into_owned(),
                    Err(_) => continue,
                };
                let Some(ws) = in_archives.remove(base_name(&name)) else { continue };
                // The header's size is not trusted for the allocation (a corrupt header
                // could ask for any amount); members above 256 MiB are bad files.
                const MAX_MEMBER: u64 = 256 << 20;
                if entry.size() > MAX_MEMBER {
                    let e =
                        format!("member {name} of {} claims {} bytes (over 256 MiB)", archive.display(), entry.size());
                    for w in ws {
                        sink(w, Err(e.clone()))?;
                    }
                    continue;
                }
                let mut buf = Vec::with_capacity(entry.size().min(16 << 20) as usize);
                let res = entry
                    .read_to_end(&mut buf)
                    .map(|_| buf)
                    .map_err(|e| format!("cannot read member {name} of {}: {e}", archive.display()));
                for w in ws {
                    sink(w, res.clone().map(RawImage::Encoded))?;
                }
            }
        }
        let mut missing: Vec<(String, Vec<usize>)> = in_archives.into_iter().collect();
        missing.sort();
        for (name, ws) in missing {
            for w in ws {
                sink(w, Err(format!("{name} not found in any archive or folder below {}", self.dir.display())))?;
            }
        }
        Ok(())
    }
}
