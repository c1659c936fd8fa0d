//! Parsing source specifications such as `idx:DIR` or `synthetic:n=4000,size=64`.

use std::path::PathBuf;
use std::sync::Arc;

use crate::sources::{folder::FolderSource, idx::IdxSource, synthetic::SyntheticSource, wake_vision::WakeVisionSource};
use crate::{DataError, Source};

/// Builds a source from a specification:
/// - `idx:DIR` — MNIST-style IDX files ([`IdxSource`]);
/// - `folder:DIR` — one sub-folder per class ([`FolderSource`]);
/// - `wake-vision:DIR` — Wake Vision CSVs plus archives or JPEGs ([`WakeVisionSource`]);
/// - `synthetic`, `synthetic:N` or `synthetic:n=N,size=S,seed=K` — the generated set
///   ([`SyntheticSource`], defaults n=2000, size=96, seed=0).
///
/// # Errors
/// [`DataError::Spec`] for an unknown kind or bad option, [`DataError::NotFound`] naming a
/// directory that does not exist.
pub fn parse_source(spec: &str) -> Result<Arc<dyn Source>, DataError> {
    let spec_err = |reason: String| DataError::Spec { spec: spec.to_string(), reason };
    let (kind, rest) = match spec.split_once(':') {
        Some((k, r)) => (k.trim(), Some(r)),
        None => (spec.trim(), None),
    };
    let dir = || -> Result<PathBuf, DataError> {
        match rest.map(str::trim) {
            Some(d) if !d.is_empty() => Ok(PathBuf::from(d)),
            _ => Err(spec_err(format!("expected {kind}:DIR"))),
        }
    };
    match kind.to_ascii_lowercase().as_str() {
        "idx" | "mnist" => Ok(Arc::new(IdxSource::new(dir()?)?)),
        "folder" | "dir" | "vww" => Ok(Arc::new(FolderSource::new(dir()?)?)),
        "wake-vision" | "wake_vision" | "wakevision" | "wv" => Ok(Arc::new(WakeVisionSource::new(dir()?)?)),
        "synthetic" | "synth" => {
            let mut s = SyntheticSource::default();
            let rest = rest.map(str::trim).unwrap_or("");
            for part in rest.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (key, value) = part.split_once('=').unwrap_or(("n", part));
                let num = |what: &str| -> Result<u64, DataError> {
                    value.trim().parse().map_err(|_| spec_err(format!("{what} = {value:?} is not a whole number")))
                };
                match key.trim() {
                    "n" | "count" => s.n = num("n")? as usize,
                    "size" | "side" => {
                        s.size = u32::try_from(num("size")?).map_err(|_| spec_err("size too large".into()))?
                    }
                    "seed" => s.seed = num("seed")?,
                    other => return Err(spec_err(format!("unknown synthetic option {other:?} (n, size, seed)"))),
                }
            }
            if s.n == 0 {
                return Err(spec_err("n must be at least 1".into()));
            }
            if !(8..=1024).contains(&s.size) {
                return Err(spec_err(format!("size {} is outside 8..=1024", s.size)));
            }
            Ok(Arc::new(s))
        }
        "audio" => Err(spec_err(
            "audio:DIR is sound, not images: `danas data inspect audio:DIR` and danas_data::audio read it; \
             searching on audio is not wired up yet"
                .into(),
        )),
        "" => Err(spec_err("empty; expected idx:DIR, folder:DIR, wake-vision:DIR or synthetic".into())),
        other => Err(spec_err(format!(
            "unknown source kind {other:?}; expected idx:DIR, folder:DIR, wake-vision:DIR or synthetic"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(parse_source("synthetic").unwrap().describe(), "synthetic:n=2000,size=96,seed=0");
        assert_eq!(parse_source("synthetic:500").unwrap().describe(), "synthetic:n=500,size=96,seed=0");
        assert_eq!(parse_source("synthetic:n=40,size=32,seed=3").unwrap().describe(), "synthetic:n=40,size=32,seed=3");
        for bad in ["synthetic:x", "synthetic:0", "synthetic:size=2", "synthetic:colour=1", "nope:/x", "", "idx:"] {
            assert!(matches!(parse_source(bad), Err(DataError::Spec { .. })), "{bad}");
        }
        let err = parse_source("folder:/definitely/not/here").err().unwrap();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
        assert!(matches!(parse_source("idx:/no/such/dir"), Err(DataError::NotFound { .. })));
        assert!(matches!(parse_source("wake-vision:/no/such/dir"), Err(DataError::NotFound { .. })));
    }
}
