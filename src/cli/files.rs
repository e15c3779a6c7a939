//! A model file opened or written in either format, told apart by content when read (the lab's
//! files start `AELAB`, a safetensors file with its header's length) and by the name's extension
//! when written.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use autoencoder_lab::model::{Autoencoder, CodeActivation};
use autoencoder_lab::{model_file, pytorch};
use burn::prelude::*;

/// A model read from a file, with what the file says about it.
pub struct Opened {
    pub model: Autoencoder,
    /// The lab's model file's training summary; null for a PyTorch state_dict, which has none.
    pub training: serde_json::Value,
    /// For a PyTorch state_dict: what was read and what was assumed ([`pytorch::Imported::describe`]).
    pub imported: Option<String>,
}

/// Opens `path` on `device`. `code` is a safetensors dense model's code activation, which its
/// tensors cannot show (`None`: the file's metadata, else linear, and `imported` says which); the
/// lab's own model file records its own, so naming one for it is refused rather than ignored.
pub fn open(path: &Path, code: Option<CodeActivation>, device: &Device) -> Result<Opened> {
    const HINT: &str = "write one with `train --save FILE`";
    let bytes = std::fs::read(path).map_err(|e| anyhow!("cannot read {}: {e}; {HINT}", path.display()))?;
    if pytorch::is_safetensors(&bytes) {
        let imported = pytorch::load(&bytes, code, device).with_context(|| path.display().to_string())?;
        let imported_text = imported.describe();
        return Ok(Opened { model: imported.model, training: serde_json::Value::Null, imported: Some(imported_text) });
    }
    if let Some(code) = code {
        bail!(
            "--code-activation {code} is for a PyTorch safetensors file; {} is the lab's own model file, which records its code activation",
            path.display()
        );
    }
    let (model, header) = model_file::load(&bytes, None, device).with_context(|| path.display().to_string())?;
    Ok(Opened { model, training: header.training, imported: None })
}

/// Whether `path` names a safetensors file (by its extension, as PyTorch users name them).
pub fn is_safetensors_name(path: &Path) -> bool {
    path.extension().is_some_and(|e| e.eq_ignore_ascii_case("safetensors"))
}

/// Writes `model` to `path`: a PyTorch state_dict of the study's encoder and decoder modules where
/// the name ends `.safetensors`, else the lab's model file with `training` in its header. Returns
/// the format's name, for the line that says where the model went.
pub fn save(path: &Path, model: &Autoencoder, training: serde_json::Value) -> Result<&'static str> {
    let (bytes, format) = if is_safetensors_name(path) {
        (pytorch::save(model)?, "a PyTorch state_dict (safetensors)")
    } else {
        (model_file::save(model, training)?, "the lab's model file")
    };
    std::fs::write(path, bytes).with_context(|| format!("cannot save the model to {}", path.display()))?;
    Ok(format)
}
