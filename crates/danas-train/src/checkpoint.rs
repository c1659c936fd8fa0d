//! Checkpoints of supernets and trained networks: weights with the candidate,
//! the number of classes and the blueprint, in `f32` or half precision.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::TrainError;
use crate::net::Network;
use crate::supernet::Supernet;
use crate::weights::{ConvWeights, NetWeights};
use danas_core::{Blueprint, Candidate};

const MAGIC: &str = "danas-train checkpoint";
const VERSION: u32 = 1;

/// Storage precision of checkpoint weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoragePrecision {
    /// 32-bit floats (exact).
    #[default]
    F32,
    /// IEEE half precision: half the size, about 3 significant digits.
    F16,
}

/// What a checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    /// A weight-sharing supernet.
    Supernet,
    /// A standalone (trained) network.
    Network,
}

#[derive(Serialize, Deserialize)]
enum Values {
    F32(Vec<f32>),
    /// Little-endian IEEE half-precision bytes (raw bytes: bincode would varint-encode `u16`s).
    F16(Vec<u8>),
}

impl Values {
    fn new(v: &[f32], p: StoragePrecision) -> Self {
        match p {
            StoragePrecision::F32 => Values::F32(v.to_vec()),
            StoragePrecision::F16 => {
                Values::F16(v.iter().flat_map(|&x| half::f16::from_f32(x).to_le_bytes()).collect())
            }
        }
    }
    fn get(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            Values::F16(v) => v.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    magic: String,
    version: u32,
    kind: CheckpointKind,
    /// Candidate, classes and blueprint as JSON (their serde forms skip empty fields).
    meta_json: String,
    tensors: Vec<Values>,
}

#[derive(Serialize, Deserialize)]
struct Meta {
    candidate: Candidate,
    classes: u32,
    blueprint: Blueprint,
    /// The data the network was trained on (absent in checkpoints written without it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<crate::DataRecord>,
}

fn err(path: &Path, reason: impl Into<String>) -> TrainError {
    TrainError::Checkpoint { path: path.to_path_buf(), reason: reason.into() }
}

fn save(
    path: &Path,
    kind: CheckpointKind,
    net: &Network,
    p: StoragePrecision,
    data: Option<&crate::DataRecord>,
) -> Result<(), TrainError> {
    let w = net.weights()?;
    let meta = Meta {
        candidate: net.candidate().clone(),
        classes: net.classes(),
        blueprint: net.blueprint().clone(),
        data: data.cloned(),
    };
    let meta_json = serde_json::to_string(&meta).map_err(|e| err(path, e.to_string()))?;
    let mut tensors = Vec::new();
    for c in &w.convs {
        for v in [&c.weight, &c.gamma, &c.beta, &c.mean, &c.var] {
            tensors.push(Values::new(v, p));
        }
    }
    tensors.push(Values::new(&w.fc_weight, p));
    tensors.push(Values::new(&w.fc_bias, p));
    let file = File { magic: MAGIC.into(), version: VERSION, kind, meta_json, tensors };
    let bytes =
        bincode::serde::encode_to_vec(&file, bincode::config::standard()).map_err(|e| err(path, e.to_string()))?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(path, format!("creating {}: {e}", parent.display())))?;
    }
    crate::checksum::write_sealed(path, bytes).map_err(|e| err(path, e))
}

fn load(path: &Path, want: CheckpointKind) -> Result<Network, TrainError> {
    load_with_record(path, want).map(|(net, _)| net)
}

fn load_with_record(path: &Path, want: CheckpointKind) -> Result<(Network, Option<crate::DataRecord>), TrainError> {
    let bytes = std::fs::read(path).map_err(|e| err(path, e.to_string()))?;
    let bytes = crate::checksum::unseal(path, &bytes)?;
    let (file, _): (File, usize) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| err(path, format!("not a danas-train checkpoint ({e})")))?;
    if file.magic != MAGIC {
        return Err(err(path, "not a danas-train checkpoint (bad magic)"));
    }
    if file.version != VERSION {
        return Err(err(path, format!("version {} is not supported (expected {VERSION})", file.version)));
    }
    if file.kind != want {
        return Err(err(path, format!("holds a {:?}, expected a {want:?}", file.kind)));
    }
    let meta: Meta = serde_json::from_str(&file.meta_json).map_err(|e| err(path, format!("metadata: {e}")))?;
    let bp = meta.candidate.blueprint(meta.classes).map_err(|e| err(path, format!("candidate: {e}")))?;
    if bp != meta.blueprint {
        return Err(err(path, "the stored blueprint differs from the one its candidate gives now"));
    }
    let n_convs = bp.named_convs().len();
    if file.tensors.len() != 5 * n_convs + 2 {
        return Err(err(path, format!("{} tensors, expected {}", file.tensors.len(), 5 * n_convs + 2)));
    }
    let mut it = file.tensors.into_iter().map(Values::get);
    let mut next = || it.next().unwrap_or_default();
    let convs = (0..n_convs)
        .map(|_| ConvWeights { weight: next(), gamma: next(), beta: next(), mean: next(), var: next() })
        .collect();
    let w = NetWeights { convs, fc_weight: next(), fc_bias: next() };
    let net = Network::from_weights(&meta.candidate, meta.classes, &w).map_err(|e| err(path, e.to_string()))?;
    Ok((net, meta.data))
}

impl Network {
    /// Saves the network with its candidate, classes and blueprint.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>, precision: StoragePrecision) -> Result<(), TrainError> {
        save(path.as_ref(), CheckpointKind::Network, self, precision, None)
    }

    /// Saves the network with its candidate, classes, blueprint and the data it was
    /// trained on ([`Network::load_with_record`] reads it back).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file.
    pub fn save_with_record(
        &self,
        path: impl AsRef<Path>,
        precision: StoragePrecision,
        record: &crate::DataRecord,
    ) -> Result<(), TrainError> {
        save(path.as_ref(), CheckpointKind::Network, self, precision, Some(record))
    }

    /// Loads a network and the data record it was saved with (`None` for a checkpoint
    /// saved without one, e.g. by an older danas).
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file and what is wrong with it.
    pub fn load_with_record(path: impl AsRef<Path>) -> Result<(Self, Option<crate::DataRecord>), TrainError> {
        load_with_record(path.as_ref(), CheckpointKind::Network)
    }

    /// Loads a network saved with [`Network::save`].
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file and what is wrong with it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        load(path.as_ref(), CheckpointKind::Network)
    }
}

impl Supernet {
    /// Saves the supernet with its candidate, classes and blueprint.
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file.
    pub fn save(&self, path: impl AsRef<Path>, precision: StoragePrecision) -> Result<(), TrainError> {
        save(path.as_ref(), CheckpointKind::Supernet, self.network(), precision, None)
    }

    /// Loads a supernet saved with [`Supernet::save`].
    ///
    /// # Errors
    /// [`TrainError::Checkpoint`] naming the file and what is wrong with it.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        load(path.as_ref(), CheckpointKind::Supernet).map(Supernet::from_network)
    }
}
