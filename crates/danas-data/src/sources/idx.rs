//! MNIST-style IDX files (`train-images-idx3-ubyte[.gz]`, `t10k-labels-idx1-ubyte[.gz]`, …).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::DataError;
use crate::source::{Catalog, Fnv, RawImage, Record, Sink, Source, file_stamp};
use crate::transform::RgbImage;

/// A directory of IDX files: `{train,t10k}-images-idx3-ubyte` and `{train,t10k}-labels-idx1-ubyte`,
/// each raw or gzipped (`.gz`). `train` becomes the `train` split and `t10k` (or `test`) the
/// `test` split; the pipeline carves a stratified validation split out of `train`.
#[derive(Debug, Clone)]
pub struct IdxSource {
    dir: PathBuf,
}

struct Pair {
    split: &'static str,
    images: PathBuf,
    labels: PathBuf,
}

const IMAGE_MAGIC: u32 = 0x0000_0803;
const LABEL_MAGIC: u32 = 0x0000_0801;

impl IdxSource {
    /// A source reading the IDX files in `dir`.
    ///
    /// # Errors
    /// [`DataError::NotFound`] if `dir` is not a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, DataError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(DataError::NotFound { what: "IDX directory", path: dir });
        }
        Ok(Self { dir })
    }

    fn find(&self, prefix: &str, kind: &str) -> Option<PathBuf> {
        [format!("{prefix}-{kind}"), format!("{prefix}-{kind}.gz"), format!("{prefix}-{}", kind.replace('-', "."))]
            .into_iter()
            .map(|n| self.dir.join(n))
            .find(|p| p.is_file())
    }

    fn pairs(&self) -> Result<Vec<Pair>, DataError> {
        let mut out = Vec::new();
        for (prefix, split) in [("train", "train"), ("t10k", "test"), ("test", "test")] {
            let images = self.find(prefix, "images-idx3-ubyte");
            let labels = self.find(prefix, "labels-idx1-ubyte");
            match (images, labels) {
                (Some(images), Some(labels)) => {
                    if !out.iter().any(|p: &Pair| p.split == split) {
                        out.push(Pair { split, images, labels });
                    }
                }
                (Some(images), None) => {
                    return Err(DataError::NotFound {
                        what: "IDX label file matching",
                        path: images.with_file_name(format!("{prefix}-labels-idx1-ubyte[.gz]")),
                    });
                }
                (None, Some(labels)) => {
                    return Err(DataError::NotFound {
                        what: "IDX image file matching",
                        path: labels.with_file_name(format!("{prefix}-images-idx3-ubyte[.gz]")),
                    });
                }
                (None, None) => {}
            }
        }
        if out.is_empty() {
            return Err(DataError::NotFound {
                what: "IDX files (train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz])",
                path: self.dir.clone(),
            });
        }
        Ok(out)
    }
}

/// The optional declared class list: `classes.txt` next to the IDX files, one
/// class name per line (blank lines ignored), label `i` naming line `i`.
pub const CLASS_LIST_FILE: &str = "classes.txt";

impl IdxSource {
    fn declared_classes(&self) -> Result<Option<(PathBuf, Vec<String>)>, DataError> {
        let path = self.dir.join(CLASS_LIST_FILE);
        if !path.is_file() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| DataError::io("read", &path, e))?;
        let names: Vec<String> = text.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect();
        if names.len() < 2 {
            return Err(DataError::format(
                &path,
                format!("declares {} class(es); at least two are needed", names.len()),
            ));
        }
        Ok(Some((path, names)))
    }
}

/// Without a declared class list, every split must imply the same class count
/// (largest label + 1): labels that disagree (train all 255, test 0 and 1) would
/// otherwise silently give a 256-way model that cannot score.
fn check_class_counts_agree(per_split: &[(PathBuf, u8)]) -> Result<(), DataError> {
    let Some((first, first_max)) = per_split.first() else { return Ok(()) };
    for (other, max) in &per_split[1..] {
        if max != first_max {
            return Err(DataError::format(
                other,
                format!(
                    "labels imply {} classes (largest label {max}) but {} implies {} (largest label {first_max}); \
                     the splits disagree. Fix the labels, or declare the classes in {CLASS_LIST_FILE} (one name per line)",
                    u32::from(*max) + 1,
                    first.display(),
                    u32::from(*first_max) + 1,
                ),
            ));
        }
    }
    Ok(())
}

/// With a declared class list, every label must name one of its classes.
fn check_declared(per_split: &[(PathBuf, u8)], list: &Path, classes: usize) -> Result<(), DataError> {
    for (labels, max) in per_split {
        if usize::from(*max) >= classes {
            return Err(DataError::format(
                labels,
                format!("holds label {max}, beyond the {classes} classes declared in {}", list.display()),
            ));
        }
    }
    Ok(())
}

fn read_all(path: &Path) -> Result<Vec<u8>, DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let mut buf = Vec::new();
    let gz = path.extension().is_some_and(|e| e == "gz");
    let res = if gz {
        flate2::read::GzDecoder::new(std::io::BufReader::new(file)).read_to_end(&mut buf)
    } else {
        std::io::BufReader::new(file).read_to_end(&mut buf)
    };
    res.map_err(|e| DataError::io("read", path, e))?;
    Ok(buf)
}

fn read_head(path: &Path) -> Result<[u8; 16], DataError> {
    let file = std::fs::File::open(path).map_err(|e| DataError::io("open", path, e))?;
    let mut head = [0u8; 16];
    let res = if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_exact(&mut head)
    } else {
        std::io::BufReader::new(file).read_exact(&mut head)
    };
    res.map_err(|e| DataError::io("read the IDX header of", path, e))?;
    Ok(head)
}

fn be_u32(buf: &[u8], at: usize) -> Option<u32> {
    buf.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// Parses an IDX label file: returns the labels.
fn parse_labels(path: &Path, buf: &[u8]) -> Result<Vec<u8>, DataError> {
    let magic = be_u32(buf, 0).ok_or_else(|| DataError::format(path, "shorter than the 8-byte IDX header"))?;
    if magic != LABEL_MAGIC {
        return Err(DataError::format(path, format!("magic {magic:#010x}, expected {LABEL_MAGIC:#010x} (u8, 1 dim)")));
    }
    let n = be_u32(buf, 4).ok_or_else(|| DataError::format(path, "shorter than the 8-byte IDX header"))? as usize;
    let data = &buf[8..];
    if data.len() != n {
        return Err(DataError::format(path, format!("header says {n} labels, file holds {}", data.len())));
    }
    Ok(data.to_vec())
}

/// Parses an IDX image header: returns (count, rows, cols) and checks the length.
fn parse_images(path: &Path, buf: &[u8]) -> Result<(usize, u32, u32), DataError> {
    let short = || DataError::format(path, "shorter than the 16-byte IDX image header");
    let magic = be_u32(buf, 0).ok_or_else(short)?;
    if magic != IMAGE_MAGIC {
        return Err(DataError::format(path, format!("magic {magic:#010x}, expected {IMAGE_MAGIC:#010x} (u8, 3 dims)")));
    }
    let n = be_u32(buf, 4).ok_or_else(short)? as usize;
    let rows = be_u32(buf, 8).ok_or_else(short)?;
    let cols = be_u32(buf, 12).ok_or_else(short)?;
    if rows == 0 || cols == 0 || rows > 65_536 || cols > 65_536 {
        return Err(DataError::format(path, format!("implausible image size {rows}x{cols}")));
    }
    let want = n.saturating_mul(rows as usize * cols as usize);
    if buf.len() - 16 != want {
        return Err(DataError::format(
            path,
            format!(
                "header says {n} images of {rows}x{cols} = {want} bytes, file holds {} (truncated?)",
                buf.len() - 16
            ),
        ));
    }
    Ok((n, rows, cols))
}

impl Source for IdxSource {
    fn describe(&self) -> String {
        format!("idx:{}", self.dir.display())
    }

    fn catalog(&self) -> Result<Catalog, DataError> {
        let mut cat = Catalog::default();
        let mut fp = Fnv::default().str("idx-v1");
        let mut max_label = 0u8;
        let mut per_split: Vec<(PathBuf, u8)> = Vec::new();
        for pair in self.pairs()? {
            for p in [&pair.images, &pair.labels] {
                let meta = std::fs::metadata(p).map_err(|e| DataError::io("stat", p, e))?;
                fp = file_stamp(fp, p, &meta);
            }
            let labels = parse_labels(&pair.labels, &read_all(&pair.labels)?)?;
            let head = read_head(&pair.images)?;
            let n_images = be_u32(&head, 4).unwrap_or(0) as usize;
            if be_u32(&head, 0) != Some(IMAGE_MAGIC) || n_images != labels.len() {
                return Err(DataError::format(
                    &pair.images,
                    format!(
                        "expected an IDX image file (magic 0x00000803) of {} images to match {}",
                        labels.len(),
                        pair.labels.display()
                    ),
                ));
            }
            per_split.push((pair.labels.clone(), labels.iter().copied().max().unwrap_or(0)));
            // Only the header is needed here; the full check happens on fetch.
            let name = pair.images.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            for (i, &l) in labels.iter().enumerate() {
                max_label = max_label.max(l);
                cat.records.push(Record {
                    key: format!("{name}#{i}"),
                    label: u32::from(l),
                    split: Some(pair.split.to_string()),
                    flags: vec![],
                });
            }
        }
        cat.class_names = match self.declared_classes()? {
            Some((path, names)) => {
                let meta = std::fs::metadata(&path).map_err(|e| DataError::io("stat", &path, e))?;
                fp = file_stamp(fp, &path, &meta);
                check_declared(&per_split, &path, names.len())?;
                names
            }
            None => {
                check_class_counts_agree(&per_split)?;
                (0..=max_label).map(|c| c.to_string()).collect()
            }
        };
        cat.fingerprint = fp.finish();
        Ok(cat)
    }

    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        for pair in self.pairs()? {
            let name = pair.images.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let prefix = format!("{name}#");
            let mine: Vec<(usize, usize)> = wanted
                .iter()
                .filter_map(|&w| {
                    let key = &catalog.records.get(w)?.key;
                    key.strip_prefix(&prefix).and_then(|i| i.parse().ok()).map(|i| (w, i))
                })
                .collect();
            if mine.is_empty() {
                continue;
            }
            let buf = read_all(&pair.images)?;
            let (n, rows, cols) = parse_images(&pair.images, &buf)?;
            let sz = rows as usize * cols as usize;
            for (w, i) in mine {
                if i >= n {
                    sink(w, Err(format!("index {i} beyond the {n} images of {name}")))?;
                    continue;
                }
                let px = &buf[16 + i * sz..16 + (i + 1) * sz];
                sink(w, RgbImage::from_gray(cols, rows, px).map(RawImage::Rgb).map_err(|e| e.to_string()))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn header_errors_name_the_problem() {
        let p = Path::new("x");
        assert!(parse_labels(p, &[0, 0, 8, 3, 0, 0, 0, 1, 5]).unwrap_err().to_string().contains("magic"));
        assert!(parse_labels(p, &[0, 0, 8, 1, 0, 0, 0, 2, 5]).unwrap_err().to_string().contains("2 labels"));
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        img.extend([0u8; 7]);
        assert!(parse_images(p, &img).unwrap_err().to_string().contains("truncated"));
        img.push(1);
        assert_eq!(parse_images(p, &img).unwrap(), (2, 2, 2));
    }
}
