//! Wake Vision: one metadata CSV per split plus JPEGs in `.tar.gz` archives (streamed, never
//! extracted to disk) or in an extracted directory tree; or the Parquet shards Hugging Face
//! publishes (image bytes, `person` and the flags in one file per shard).

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
///
/// The directory may instead (or also) hold Parquet shards, as Hugging Face publishes
/// Wake Vision (`train_quality-00000-of-00010.parquet`, `validation-….parquet`, …): the file
/// name tells the split; an `image` column holds the encoded image (a struct with a
/// `bytes` field, as the `datasets` Image feature writes it, or plain binary), `person` the
/// label, and every other numeric or boolean column is a flag.
#[derive(Debug, Clone)]
pub struct WakeVisionSource {
    dir: PathBuf,
}

/// Everything found below the directory.
struct Listing {
    csvs: Vec<(String, PathBuf)>,
    parquets: Vec<(String, PathBuf)>,
    archives: Vec<PathBuf>,
    files: HashMap<String, PathBuf>,
    stamp: Fnv,
}

/// The split a metadata CSV or a Parquet shard holds, from its file name.
fn split_of_name(name: &str) -> Option<&'static str> {
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
        let mut l =
            Listing { csvs: vec![], parquets: vec![], archives: vec![], files: HashMap::new(), stamp: Fnv::default() };
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
                let kind = if lower.ends_with(".csv") {
                    Some(("CSV", &mut l.csvs))
                } else if lower.ends_with(".parquet") {
                    Some(("Parquet", &mut l.parquets))
                } else {
                    None
                };
                if let Some((kind, list)) = kind {
                    let split = split_of_name(&name).ok_or_else(|| {
                        DataError::format(
                            &path,
                            format!(
                                "cannot tell the split from the {kind} file name (expected train_quality, \
                                 train_large, validation or test in it)"
                            ),
                        )
                    })?;
                    list.push((split.to_string(), path.clone()));
                    all.push((path, meta));
                } else if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
                    l.archives.push(path.clone());
                    all.push((path, meta));
                } else if super::folder::is_image_name(&name) {
                    l.files.insert(name, path);
                }
            }
        }
        if l.csvs.is_empty() && l.parquets.is_empty() {
            return Err(DataError::NotFound {
                what: "Wake Vision metadata CSV (e.g. wake_vision_validation.csv) or Parquet shards in",
                path: self.dir.clone(),
            });
        }
        l.csvs.sort();
        l.parquets.sort();
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
        for (split, path) in &listing.parquets {
            parquet_catalog(&mut cat, split, path)?;
        }
        let nflags = cat.flag_names.len();
        for r in &mut cat.records {
            r.flags.resize(nflags, -1);
        }
        Ok(cat)
    }

    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        let mut in_archives: HashMap<String, Vec<usize>> = HashMap::new();
        let mut in_parquet: std::collections::BTreeMap<String, HashMap<usize, Vec<usize>>> = Default::default();
        for &w in wanted {
            let Some(rec) = catalog.records.get(w) else {
                sink(w, Err("no such record".into()))?;
                continue;
            };
            if let Some((file, row)) = parquet_key(&rec.key) {
                in_parquet.entry(file.to_string()).or_default().entry(row).or_default().push(w);
            } else if Path::new(&rec.key).is_absolute() || rec.key.contains(['/', '\\']) {
                sink(w, std::fs::read(&rec.key).map(RawImage::Encoded).map_err(|e| format!("cannot read: {e}")))?;
            } else {
                in_archives.entry(rec.key.clone()).or_default().push(w);
            }
        }
        for (file, rows) in in_parquet {
            parquet_fetch(Path::new(&file), rows, sink)?;
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

// ---------------------------------------------------------------------------------
// Parquet shards.

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::{Field, Row};
use parquet::schema::types::{Type, TypePtr};

/// `FILE.parquet#ROW`: the record key of a row of a shard.
fn parquet_key(key: &str) -> Option<(&str, usize)> {
    let (file, row) = key.rsplit_once('#')?;
    if !file.to_ascii_lowercase().ends_with(".parquet") {
        return None;
    }
    Some((file, row.parse().ok()?))
}

fn open_parquet(path: &Path) -> Result<SerializedFileReader<std::fs::File>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io("open", path, e))?;
    SerializedFileReader::new(file).map_err(|e| DataError::format(path, format!("not a readable Parquet file: {e}")))
}

/// A projection of the file's schema onto the top-level fields `keep` accepts.
fn projection(path: &Path, schema: &Type, keep: impl Fn(&TypePtr) -> bool) -> Result<Type, DataError> {
    let fields: Vec<TypePtr> = schema.get_fields().iter().filter(|f| keep(f)).cloned().collect();
    Type::group_type_builder(schema.name())
        .with_fields(fields)
        .build()
        .map_err(|e| DataError::format(path, format!("cannot select columns: {e}")))
}

/// A numeric or boolean cell as a number; `None` for null or another type.
fn number(f: &Field) -> Option<f64> {
    Some(match f {
        Field::Bool(b) => f64::from(u8::from(*b)),
        Field::Byte(v) => f64::from(*v),
        Field::Short(v) => f64::from(*v),
        Field::Int(v) => f64::from(*v),
        Field::Long(v) => *v as f64,
        Field::UByte(v) => f64::from(*v),
        Field::UShort(v) => f64::from(*v),
        Field::UInt(v) => f64::from(*v),
        Field::ULong(v) => *v as f64,
        Field::Float(v) => f64::from(*v),
        Field::Double(v) => *v,
        _ => return None,
    })
}

fn cell<'a>(row: &'a Row, name: &str) -> Option<&'a Field> {
    row.get_column_iter().find(|(n, _)| n.as_str() == name).map(|(_, f)| f)
}

/// Adds the rows of one shard to the catalogue (the image column is not read).
fn parquet_catalog(cat: &mut Catalog, split: &str, path: &Path) -> Result<(), DataError> {
    let reader = open_parquet(path)?;
    let schema = reader.metadata().file_metadata().schema().clone();
    let names: Vec<String> = schema.get_fields().iter().map(|f| f.name().to_string()).collect();
    for need in ["image", "person"] {
        if !names.iter().any(|n| n == need) {
            return Err(DataError::format(path, format!("missing column `{need}` (columns: {})", names.join(", "))));
        }
    }
    // Flags: the numeric or boolean top-level columns besides `person`.
    let flag_fields: Vec<String> = schema
        .get_fields()
        .iter()
        .filter(|f| f.is_primitive() && f.name() != "person" && f.name() != "image")
        .filter(|f| {
            use parquet::basic::Type as P;
            matches!(f.get_physical_type(), P::BOOLEAN | P::INT32 | P::INT64 | P::FLOAT | P::DOUBLE)
        })
        .map(|f| f.name().to_string())
        .collect();
    let slots: Vec<usize> = flag_fields
        .iter()
        .map(|h| {
            cat.flag_names.iter().position(|f| f == h).unwrap_or_else(|| {
                cat.flag_names.push(h.clone());
                cat.flag_names.len() - 1
            })
        })
        .collect();
    let proj = projection(path, &schema, |f| f.name() != "image")?;
    let rows =
        reader.get_row_iter(Some(proj)).map_err(|e| DataError::format(path, format!("cannot read rows: {e}")))?;
    for (row_no, row) in rows.enumerate() {
        let at = || format!("{}#{row_no}", path.display());
        let row = match row {
            Ok(r) => r,
            Err(e) => {
                cat.skipped.push(Skipped { path: at(), reason: format!("bad Parquet row: {e}") });
                continue;
            }
        };
        let label = match cell(&row, "person").and_then(number) {
            None => {
                cat.excluded += 1;
                continue;
            }
            Some(-1.0) => {
                cat.excluded += 1;
                continue;
            }
            Some(v) if v == 0.0 || v == 1.0 => v as u32,
            Some(v) => {
                cat.skipped.push(Skipped { path: at(), reason: format!("person = {v} is not 0, 1, -1 or null") });
                continue;
            }
        };
        let mut flags = vec![-1i8; cat.flag_names.len()];
        for (name, &slot) in flag_fields.iter().zip(&slots) {
            flags[slot] = match cell(&row, name).and_then(number) {
                Some(1.0) => 1,
                Some(0.0) => 0,
                _ => -1,
            };
        }
        cat.records.push(Record { key: at(), label, split: Some(split.to_string()), flags });
    }
    Ok(())
}

/// The encoded image of a row: the `bytes` field of an `image` struct, or `image` itself.
fn image_bytes(row: &Row) -> Result<Vec<u8>, String> {
    match cell(row, "image") {
        Some(Field::Bytes(b)) => Ok(b.data().to_vec()),
        Some(Field::Group(g)) => match cell(g, "bytes") {
            Some(Field::Bytes(b)) => Ok(b.data().to_vec()),
            Some(Field::Null) | None => Err("the image struct has no bytes (only a path?)".into()),
            Some(other) => Err(format!("image.bytes is not binary but {other}")),
        },
        Some(Field::Null) | None => Err("no image in this row".into()),
        Some(other) => Err(format!("the image column is not binary or a struct but {other}")),
    }
}

/// Delivers the images of the wanted rows (`row → catalogue indices`) of one shard.
fn parquet_fetch(path: &Path, mut rows: HashMap<usize, Vec<usize>>, sink: &mut Sink<'_>) -> Result<(), DataError> {
    let reader = open_parquet(path)?;
    let schema = reader.metadata().file_metadata().schema().clone();
    let proj = projection(path, &schema, |f| f.name() == "image")?;
    let iter =
        reader.get_row_iter(Some(proj)).map_err(|e| DataError::format(path, format!("cannot read rows: {e}")))?;
    for (row_no, row) in iter.enumerate() {
        if rows.is_empty() {
            break;
        }
        let Some(ws) = rows.remove(&row_no) else { continue };
        let res = row.map_err(|e| format!("bad Parquet row: {e}")).and_then(|r| image_bytes(&r)).map(RawImage::Encoded);
        for w in ws {
            sink(w, res.clone())?;
        }
    }
    let mut missing: Vec<(usize, Vec<usize>)> = rows.into_iter().collect();
    missing.sort();
    for (row, ws) in missing {
        for w in ws {
            sink(w, Err(format!("row {row} is not in {}", path.display())))?;
        }
    }
    Ok(())
}
