//! A checksum trailer for checkpoint files (issue 30, item 5): the payload is
//! followed by its 64-bit FNV-1a hash and an 8-byte marker, so a flipped or lost
//! byte is found on load ([`TrainError::Corrupt`]) instead of silently giving
//! wrong weights or a baffling decode error. Files written before the trailer
//! existed still load (they have no marker); readers that predate it ignore the
//! trailing bytes. Files are written to a temporary name and renamed, so a crash
//! never leaves a half-written checkpoint under the real name.

use std::path::Path;

use crate::TrainError;

/// Marks a checksummed file: the last 8 bytes.
const MARKER: &[u8; 8] = b"DNSUM\x00\x00\x01";
/// Hash (8 bytes) and marker (8 bytes).
const TRAILER: usize = 16;

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The payload followed by its checksum trailer.
pub(crate) fn seal(mut payload: Vec<u8>) -> Vec<u8> {
    let h = fnv1a(&payload);
    payload.extend_from_slice(&h.to_le_bytes());
    payload.extend_from_slice(MARKER);
    payload
}

/// The payload of a file's bytes, checked against its trailer; a file without a
/// trailer (written before checksums) is returned whole.
///
/// # Errors
/// [`TrainError::Corrupt`] naming the file when the checksum does not match.
pub(crate) fn unseal<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8], TrainError> {
    if bytes.len() < TRAILER || &bytes[bytes.len() - 8..] != MARKER {
        return Ok(bytes);
    }
    let (payload, trailer) = bytes.split_at(bytes.len() - TRAILER);
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&trailer[..8]);
    let stored = u64::from_le_bytes(stored);
    let actual = fnv1a(payload);
    if stored != actual {
        return Err(TrainError::Corrupt {
            path: path.to_path_buf(),
            reason: format!(
                "checksum mismatch (stored {stored:016x}, computed {actual:016x} over {} bytes)",
                payload.len()
            ),
        });
    }
    Ok(payload)
}

/// Writes `payload` with its trailer to a temporary sibling, then renames it to `path`.
///
/// # Errors
/// The I/O error, as text.
pub(crate) fn write_sealed(path: &Path, payload: Vec<u8>) -> Result<(), String> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, seal(payload)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        e.to_string()
    })
}

/// Checks a checkpoint file's checksum without decoding it: `Ok(true)` when it
/// has a trailer that matches, `Ok(false)` when it has none (an older file).
///
/// # Errors
/// [`TrainError::Corrupt`] when the checksum does not match,
/// [`TrainError::Checkpoint`] when the file cannot be read.
pub fn verify_checkpoint(path: impl AsRef<Path>) -> Result<bool, TrainError> {
    let path = path.as_ref();
    let bytes =
        std::fs::read(path).map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
    let payload = unseal(path, &bytes)?;
    Ok(payload.len() != bytes.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_flipped_byte_is_found_and_old_files_pass() {
        let p = Path::new("x.bin");
        let sealed = seal(b"weights".to_vec());
        assert_eq!(unseal(p, &sealed).unwrap(), b"weights");
        for i in 0..sealed.len() - 8 {
            let mut bad = sealed.clone();
            bad[i] ^= 0x10;
            assert!(matches!(unseal(p, &bad), Err(TrainError::Corrupt { .. })), "byte {i}");
        }
        assert_eq!(unseal(p, b"old file").unwrap(), b"old file");
    }
}
