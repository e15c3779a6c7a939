//! The model file: a small header naming the model and how it was trained, then burn's record.
//!
//! Layout: the 8 magic bytes `AELAB\x00\x00\x01`, a little-endian u32 header length, the header
//! as JSON, then the module's parameters in burn's burnpack format. The header comes first so a
//! file of the wrong kind is refused before any weight is touched.

use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::Bytes;
use serde::{Deserialize, Serialize};

use crate::model::{Autoencoder, CodeActivation, ModelKind};

const MAGIC: &[u8; 8] = b"AELAB\x00\x00\x01";
/// A header is a few hundred bytes; anything near this is not one of ours.
const MAX_HEADER: usize = 64 * 1024;
/// The largest model here is under 1 MB of f32s; a file far past that is refused unread.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;

/// What a model file says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelHeader {
    pub model: ModelKind,
    pub latent: usize,
    pub parameters: usize,
    /// What follows the code layer. Absent in files written before the setting existed, which
    /// hold the model's default: a linear code for dense, the ReLU code for conv.
    #[serde(default)]
    pub code_activation: Option<CodeActivation>,
    /// Free-form training summary (epochs, images, losses) for people reading the file.
    #[serde(default)]
    pub training: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("not a model file of this lab (it does not start with the lab's marker)")]
    Foreign,
    #[error("the model file is truncated ({0})")]
    Truncated(&'static str),
    #[error("the model file is {0} bytes, more than the {MAX_FILE_BYTES} any model here needs")]
    TooLarge(usize),
    #[error("the model file's header is unreadable: {0}")]
    Header(String),
    #[error("this file holds a {found} model, but a {expected} model was asked for")]
    WrongKind { found: ModelKind, expected: ModelKind },
    #[error("the model file's weights do not fit a {model} model with latent size {latent}: {reason}")]
    Weights { model: ModelKind, latent: usize, reason: String },
}

/// Serializes `model` with `training` as the header's summary.
pub fn save(model: &Autoencoder, training: serde_json::Value) -> Result<Vec<u8>, CheckpointError> {
    let header = ModelHeader {
        model: model.kind(),
        latent: model.latent_size(),
        parameters: model.num_params(),
        code_activation: Some(model.code_activation()),
        training,
    };
    let header = serde_json::to_vec(&header).map_err(|e| CheckpointError::Header(e.to_string()))?;
    let weights = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| CheckpointError::Weights { model: model.kind(), latent: model.latent_size(), reason: e.to_string() })?;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&weights);
    Ok(out)
}

/// Reads only the header, checking the marker and sizes.
pub fn read_header(bytes: &[u8]) -> Result<(ModelHeader, &[u8]), CheckpointError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(CheckpointError::TooLarge(bytes.len()));
    }
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) { CheckpointError::Truncated("no header") } else { CheckpointError::Foreign });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(CheckpointError::Foreign);
    }
    let rest = &bytes[MAGIC.len()..];
    let len = rest.get(..4).ok_or(CheckpointError::Truncated("no header length"))?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_HEADER {
        return Err(CheckpointError::Header(format!("its length {len} is not plausible")));
    }
    let header = rest.get(4..4 + len).ok_or(CheckpointError::Truncated("the header is cut off"))?;
    let header: ModelHeader = serde_json::from_slice(header).map_err(|e| CheckpointError::Header(e.to_string()))?;
    Ok((header, &rest[4 + len..]))
}

/// Loads a model file onto `device`; with `expected`, a file of the other kind is refused.
pub fn load(bytes: &[u8], expected: Option<ModelKind>, device: &Device) -> Result<(Autoencoder, ModelHeader), CheckpointError> {
    let (header, weights) = read_header(bytes)?;
    if let Some(expected) = expected.filter(|&e| e != header.model) {
        return Err(CheckpointError::WrongKind { found: header.model, expected });
    }
    let fault = |reason: String| CheckpointError::Weights { model: header.model, latent: header.latent, reason };
    if header.latent == 0 || header.latent > 4096 {
        return Err(fault("the latent size is not plausible".into()));
    }
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec())).map_err(|e| fault(e.to_string()))?;
    let code = header.code_activation.unwrap_or(header.model.default_code_activation());
    let model = header.model.init_with(Some(header.latent), code, device).map_err(CheckpointError::Header)?;
    let model = model.try_load_record(record).map_err(|e| fault(e.to_string()))?;
    Ok((model, header))
}
