use serde::{Deserialize, Serialize};

use crate::{CoreError, DType};

/// Numeric precision of a deployed model: decides the byte width of weights,
/// biases and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// Full-integer int8 (TFLite `TFLITE_BUILTINS_INT8`): int8 weights and
    /// activations, int32 biases, per-channel quantisation parameters.
    #[default]
    Int8,
    /// Half precision float everywhere.
    F16,
    /// Single precision float everywhere.
    F32,
}

impl Precision {
    /// Element type of activations.
    pub fn activation_dtype(self) -> DType {
        match self {
            Precision::Int8 => DType::I8,
            Precision::F16 => DType::F16,
            Precision::F32 => DType::F32,
        }
    }
    /// Element type of weights.
    pub fn weight_dtype(self) -> DType {
        self.activation_dtype()
    }
    /// Element type of biases.
    pub fn bias_dtype(self) -> DType {
        match self {
            Precision::Int8 => DType::I32,
            Precision::F16 => DType::F16,
            Precision::F32 => DType::F32,
        }
    }
    /// Whether the model carries quantisation parameters.
    pub fn quantized(self) -> bool {
        matches!(self, Precision::Int8)
    }
    /// Lower-case name (`int8`, `f16`, `f32`).
    pub fn name(self) -> &'static str {
        match self {
            Precision::Int8 => "int8",
            Precision::F16 => "f16",
            Precision::F32 => "f32",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = CoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "int8" | "i8" => Ok(Precision::Int8),
            "f16" | "float16" | "fp16" => Ok(Precision::F16),
            "f32" | "float32" | "fp32" => Ok(Precision::F32),
            _ => Err(CoreError::Parse {
                what: "precision",
                input: s.to_string(),
                reason: "expected int8, f16 or f32".into(),
            }),
        }
    }
}
