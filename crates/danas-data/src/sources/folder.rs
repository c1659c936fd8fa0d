//! An image folder: one sub-folder per class (the Visual Wake Words layout), optionally
//! below split folders (`train/`, `validation/` or `val/`, `test/`).

use std::path::{Path, PathBuf};

use crate::DataError;
use crate::source::{Catalog, Fnv, RawImage, Record, Sink, Skipped, Source, file_stamp};

/// `DIR/<class>/*.{jpg,jpeg,png}`, or `DIR/<split>/<class>/*` when every sub-folder of `DIR`
/// is a split name (`train`, `validation`/`val`, `test`). Classes are the sorted sub-folder
/// names; other files (no image extension, hidden files) are ignored.
#[derive(Debug, Clone)]
pub struct FolderSource {
    dir: PathBuf,
}

/// Whether a file name has a JPEG or PNG extension.
pub(crate) fn is_image_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !lower.starts_with('.') && [".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e))
}

fn split_name(dir_name: &str) -> Option<&'static str> {
    match dir_name.to_ascii_lowercase().as_str() {
        "train" => Some("train"),
        "validation" | "val" | "valid" => Some("validation"),
        "test" => Some("test"),
        _ => None,
    }
}

fn subdirs(dir: &Path) -> Result<Vec<(String, PathBuf)>, DataError> {
    let rd = std::fs::read_dir(dir).map_err(|e| DataError::io("list", dir, e))?;
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| DataError::io("list", dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && entry.path().is_dir() {
            out.push((name, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// The metadata of an image file, following symbolic links (git-annex and DVC
/// keep datasets as links), or why it cannot be used: a broken link (an annexed
/// file whose content is not here), or something other than a regular file. Only
/// the two fixed levels below the root are listed, never recursively, so a link
/// loop cannot make listing run forever; a link that points back at itself fails
/// to resolve and is named.
fn image_file(path: &Path) -> Result<std::fs::Metadata, String> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => Ok(m),
        Ok(_) => Err("has an image name but is not a regular file".into()),
        Err(e) => {
            let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
            if link {
                let target = std::fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
                Err(format!("symbolic link to {target} cannot be followed (content not fetched, or a loop?): {e}"))
            } else {
                Err(format!("cannot stat: {e}"))
            }
        }
    }
}

impl FolderSource {
    /// A source reading the class folders in `dir`.
    ///
    /// # Errors
    /// [`DataError::NotFound`] if `dir` is not a directory.
    pub fn new(dir: impl Into<PathBuf>) -> Result<Self, DataError> {
        let dir = dir.into();
        if !dir.is_dir() {
            return Err(DataError::NotFound { what: "image folder", path: dir });
        }
        Ok(Self { dir })
    }
}

impl Source for FolderSource {
    fn describe(&self) -> String {
        format!("folder:{}", self.dir.display())
    }

    fn catalog(&self) -> Result<Catalog, DataError> {
        let top = subdirs(&self.dir)?;
        let split_layout = !top.is_empty() && top.iter().all(|(n, _)| split_name(n).is_some());
        let roots: Vec<(Option<String>, PathBuf)> = if split_layout {
            top.iter().map(|(n, p)| (split_name(n).map(str::to_string), p.clone())).collect()
        } else {
            vec![(None, self.dir.clone())]
        };
        let mut class_names: Vec<String> = Vec::new();
        for (_, root) in &roots {
            for (c, _) in subdirs(root)? {
                if !class_names.contains(&c) {
                    class_names.push(c);
                }
            }
        }
        class_names.sort();
        if class_names.is_empty() {
            return Err(DataError::format(&self.dir, "no class sub-folders (expected DIR/<class>/<image files>)"));
        }
        let mut cat = Catalog { class_names, ..Default::default() };
        let mut fp = Fnv::default().str("folder-v1");
        for (split, root) in &roots {
            for (class, cdir) in subdirs(root)? {
                let label = cat.class_names.iter().position(|c| *c == class).unwrap_or(0) as u32;
                let rd = match std::fs::read_dir(&cdir) {
                    Ok(rd) => rd,
                    Err(e) => {
                        cat.skipped
                            .push(Skipped { path: cdir.display().to_string(), reason: format!("cannot list: {e}") });
                        continue;
                    }
                };
                let mut files: Vec<(PathBuf, std::fs::Metadata)> = Vec::new();
                for entry in rd {
                    let Ok(entry) = entry else { continue };
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if !is_image_name(&name) {
                        continue;
                    }
                    match image_file(&entry.path()) {
                        Ok(m) => files.push((entry.path(), m)),
                        Err(reason) => cat.skipped.push(Skipped { path: entry.path().display().to_string(), reason }),
                    }
                }
                files.sort_by(|a, b| a.0.cmp(&b.0));
                for (path, meta) in files {
                    fp = file_stamp(fp, &path, &meta);
                    cat.records.push(Record {
                        key: path.display().to_string(),
                        label,
                        split: split.clone(),
                        flags: vec![],
                    });
                }
            }
        }
        cat.fingerprint = fp.finish();
        Ok(cat)
    }

    fn fetch(&self, catalog: &Catalog, wanted: &[usize], sink: &mut Sink<'_>) -> Result<(), DataError> {
        for &w in wanted {
            let Some(rec) = catalog.records.get(w) else {
                sink(w, Err("no such record".into()))?;
                continue;
            };
            let res = std::fs::read(&rec.key).map(RawImage::Encoded).map_err(|e| format!("cannot read: {e}"));
            sink(w, res)?;
        }
        Ok(())
    }
}
