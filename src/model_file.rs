//! The model file: a small header naming the model and how it was trained, then burn's record.
//!
//! Layout: the 8 magic bytes `AELAB\x00\x00\x01`, a little-endian u32 header length, the header
//! as JSON, then the module's parameters in burn's burnpack format. The header comes first so a
//! file of the wrong kind is refused before any weight is touched.
//!
//! # Files from anyone
//!
//! [`load`] checks a file in this order, each step before anything sized by the file is made:
//! the file's length; the marker; the header's length (at most 64 KiB) and JSON; the model kind;
//! the latent size (1 to [`MAX_LATENT`]); the header's CRC-32 of the weights, where the file has
//! one; that the parameter count in the header is the one the model of that kind and latent size
//! has (counted from the layers' shapes, before any weight is allocated); that the weights are
//! no shorter than that many f32s and no longer by more than burnpack's own overhead; and then,
//! with burn's burnpack reader, that the record holds exactly one f32 tensor per parameter
//! tensor and as many numbers as the model.
//!
//! What still reaches burn's decoder ([`ModuleRecord::from_bytes`], then `try_load_record`) is
//! therefore a burnpack that the same reader has just parsed and accepted, whose every tensor is
//! f32 with a byte length matching its shape (the reader checks that), one per parameter and no
//! more numbers than the model has. burn then matches each tensor to a parameter by path and
//! refuses a wrong shape, a missing tensor or an unused one with an error, before making a
//! tensor; it never sees a dtype it would have to convert, a quantized tensor (whose length the
//! reader does not check) or a size the file did not pay for. The weight values themselves are
//! not checked: any f32, NaN included, is a number a model could hold (a diverged run saves
//! them too), and the predictors rank codes with `total_cmp`, which orders NaN. Files written before
//! the CRC-32 field have none, so for them a flipped bit in a weight loads as a different
//! weight; every other check above still applies.

use burn::prelude::*;
use burn::store::ModuleRecord;
use burn::tensor::{Bytes, DType};
use serde::{Deserialize, Serialize};

use crate::model::{Autoencoder, CodeActivation, ModelKind};
use crate::params;

const MAGIC: &[u8; 8] = b"AELAB\x00\x00\x01";
/// A header is a few hundred bytes; anything near this is not one of ours.
const MAX_HEADER: usize = 64 * 1024;
/// The largest model here is under 1 MB of f32s; a file far past that is refused unread.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// The widest latent code a model file may ask for: the one limit a training run has too. The
/// models are built lazily (no weight is allocated until loaded), and a dense model this wide has
/// ~107 M parameters, so its file would be far past [`MAX_FILE_BYTES`] and is refused by the size
/// checks before anything is made.
pub use crate::model::MAX_LATENT;
/// What burnpack adds to the raw f32s: a 10-byte header, CBOR metadata (a name, dtype, shape,
/// offsets and id per tensor, well under 200 bytes each) and up to 255 bytes of alignment
/// padding per tensor. The models here have at most 16 tensors, so 64 KiB is ample.
const RECORD_OVERHEAD: usize = 64 * 1024;

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
    /// CRC-32 (IEEE) of the weights that follow the header. Files written before this field have
    /// none and still load; where it is present, a file whose weights do not match is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights_crc32: Option<u32>,
    /// Free-form training summary (epochs, images, losses) for people reading the file.
    #[serde(default)]
    pub training: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelFileError {
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
pub fn save(model: &Autoencoder, training: serde_json::Value) -> Result<Vec<u8>, ModelFileError> {
    let weights = model
        .clone()
        .into_record()
        .into_bytes()
        .map_err(|e| ModelFileError::Weights { model: model.kind(), latent: model.latent_size(), reason: e.to_string() })?;
    let header = ModelHeader {
        model: model.kind(),
        latent: model.latent_size(),
        parameters: model.num_params(),
        code_activation: Some(model.code_activation()),
        weights_crc32: Some(crc32(&weights)),
        training,
    };
    let header = serde_json::to_vec(&header).map_err(|e| ModelFileError::Header(e.to_string()))?;
    let mut out = Vec::with_capacity(MAGIC.len() + 4 + header.len() + weights.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&weights);
    Ok(out)
}

/// Reads only the header, checking the marker and sizes.
pub fn read_header(bytes: &[u8]) -> Result<(ModelHeader, &[u8]), ModelFileError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(ModelFileError::TooLarge(bytes.len()));
    }
    if bytes.len() < MAGIC.len() {
        return Err(if MAGIC.starts_with(bytes) { ModelFileError::Truncated("no header") } else { ModelFileError::Foreign });
    }
    if &bytes[..MAGIC.len()] != MAGIC {
        return Err(ModelFileError::Foreign);
    }
    let rest = &bytes[MAGIC.len()..];
    let len = rest.get(..4).ok_or(ModelFileError::Truncated("no header length"))?;
    let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
    if len > MAX_HEADER {
        return Err(ModelFileError::Header(format!("its length {len} is not plausible")));
    }
    let header = rest.get(4..4 + len).ok_or(ModelFileError::Truncated("the header is cut off"))?;
    let header: ModelHeader = serde_json::from_slice(header).map_err(|e| ModelFileError::Header(e.to_string()))?;
    Ok((header, &rest[4 + len..]))
}

/// Loads a model file onto `device`; with `expected`, a file of the other kind is refused.
/// The module doc lists what is checked before burn decodes the weights.
pub fn load(bytes: &[u8], expected: Option<ModelKind>, device: &Device) -> Result<(Autoencoder, ModelHeader), ModelFileError> {
    let (header, weights) = read_header(bytes)?;
    if let Some(expected) = expected.filter(|&e| e != header.model) {
        return Err(ModelFileError::WrongKind { found: header.model, expected });
    }
    let fault = |reason: String| ModelFileError::Weights { model: header.model, latent: header.latent, reason };
    if header.latent == 0 || header.latent > MAX_LATENT {
        return Err(fault("the latent size is not plausible".into()));
    }
    if let Some(stored) = header.weights_crc32 {
        let found = crc32(weights);
        if found != stored {
            return Err(fault(format!(
                "their CRC-32 is {found:08x} but the header says {stored:08x}: the file is corrupted; save it again"
            )));
        }
    }
    // Lazy: the layers know their shapes, but no weight is allocated until the record lands.
    let code = header.code_activation.unwrap_or(header.model.default_code_activation());
    let model = header.model.init_with(Some(header.latent), code, device).map_err(ModelFileError::Header)?;
    check_record(weights, &header, &model).map_err(fault)?;
    let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights.to_vec())).map_err(|e| fault(e.to_string()))?;
    let model = model.try_load_record(record).map_err(|e| fault(e.to_string()))?;
    Ok((model, header))
}

/// The checks between the header and burn's decoder (see the module doc): sizes first, from the
/// lengths alone, then the record's tensors as burnpack's reader sees them.
fn check_record(weights: &[u8], header: &ModelHeader, model: &Autoencoder) -> Result<(), String> {
    let parameters = model.num_params();
    if header.parameters != parameters {
        return Err(format!("the header counts {} parameters but this model has {parameters}", header.parameters));
    }
    let floats = parameters * size_of::<f32>();
    if weights.len() < floats {
        return Err(format!("{} bytes of weights cannot hold {parameters} f32 parameters (the file is truncated)", weights.len()));
    }
    if weights.len() > floats + RECORD_OVERHEAD {
        return Err(format!("{} bytes of weights is far more than {parameters} f32 parameters need", weights.len()));
    }
    let tensors = burn_pack::Reader::from_bytes(Bytes::from_bytes_vec(weights.to_vec()))
        .and_then(burn_pack::Reader::into_tensors)
        .map_err(|e| e.to_string())?;
    let param_tensors = params::tensor_count(model);
    if tensors.len() != param_tensors {
        return Err(format!("the record holds {} tensors but the model has {param_tensors} parameter tensors", tensors.len()));
    }
    if let Some(tensor) = tensors.iter().find(|t| t.dtype != DType::F32) {
        return Err(format!("tensor {:?} is {:?}; the models here hold f32 only", tensor.name, tensor.dtype));
    }
    let numbers: usize = tensors.iter().map(|t| t.shape.num_elements()).sum();
    if numbers != parameters {
        return Err(format!("the record holds {numbers} numbers but the model has {parameters} parameters"));
    }
    Ok(())
}

/// CRC-32 as in gzip and PNG (IEEE 802.3), so any zlib tool can check a file's weights: flate2's,
/// which the MNIST reader already links on every target.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

// The model file's cases, each tested here once: what loads, and each way a file is refused, with
// its reason. tests/rust/fuzz.rs feeds the reader malformed files by the thousand (and checks
// what only it can: a record rebuilt with another dtype, the allocations a header may cause);
// tests/rust/cli.rs shows a refusal reaching the command line's user in one line.
#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use std::path::Path;

    use pollster::block_on;
    use serde_json::json;

    use super::*;
    use crate::data::{Mnist, MnistSet};
    use crate::train::{Trainer, TrainingConfig};

    fn device() -> Device {
        Device::flex()
    }

    fn test_images(n: usize) -> MnistSet {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"));
        Mnist::load(dir).expect("the MNIST files should be in data/mnist").test.take(n)
    }

    fn trained(kind: ModelKind) -> Autoencoder {
        let images = test_images(64);
        let mut trainer = Trainer::new(TrainingConfig::new(kind), &device(), images.len()).unwrap();
        block_on(trainer.run(&images, 2)).unwrap();
        block_on(trainer.inference_model()).unwrap()
    }

    fn seeded(model: ModelKind, code_activation: Option<CodeActivation>, seed: u64) -> Autoencoder {
        let config = TrainingConfig { seed, code_activation, ..TrainingConfig::new(model) };
        block_on(Trainer::new(config, &device(), 1).unwrap().inference_model()).unwrap()
    }

    /// A model file's header as JSON, and the file rebuilt around an edited header.
    fn edit_header(bytes: &[u8], edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>)) -> Vec<u8> {
        let (_, weights) = read_header(bytes).unwrap();
        let len = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let mut header: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&bytes[12..12 + len]).unwrap();
        edit(&mut header);
        let header = serde_json::to_vec(&header).unwrap();
        let mut out = bytes[..8].to_vec();
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        out.extend_from_slice(weights);
        out
    }

    #[test]
    fn model_files_round_trip() {
        let images = test_images(8);
        let batch = images.batch(&(0..8).collect::<Vec<_>>(), &device());
        for kind in ModelKind::ALL {
            let model = trained(kind);
            let bytes = save(&model, json!({"epochs": 1})).unwrap();
            let (loaded, header) = load(&bytes, Some(kind), &device()).unwrap();
            assert_eq!((header.model, header.latent, header.parameters), (kind, model.latent_size(), model.num_params()));
            assert_eq!(header.training["epochs"], 1);
            let a = model.forward(batch.clone()).into_data().try_into_vec::<f32>().unwrap();
            let b = loaded.forward(batch.clone()).into_data().try_into_vec::<f32>().unwrap();
            assert_eq!(a, b, "{kind}: the loaded model reconstructs differently");
        }
    }

    #[test]
    fn bad_model_files_are_refused_with_a_reason() {
        let dense = save(&trained(ModelKind::Dense), serde_json::Value::Null).unwrap();
        let refused = |bytes: &[u8], kind| load(bytes, kind, &device()).map(|_| ()).unwrap_err();

        assert!(matches!(refused(&dense, Some(ModelKind::Conv)), ModelFileError::WrongKind { .. }));
        assert!(matches!(refused(b"PK\x03\x04 a zip file, not a model", None), ModelFileError::Foreign));
        assert!(matches!(refused(&dense[..6], None), ModelFileError::Truncated(_)));
        assert!(matches!(refused(&dense[..20], None), ModelFileError::Truncated(_)));
        assert!(matches!(refused(&dense[..dense.len() - 100], None), ModelFileError::Weights { .. }));
        assert!(matches!(refused(&vec![0u8; MAX_FILE_BYTES + 1], None), ModelFileError::TooLarge(_)));

        // A header that claims a conv model over a dense model's weights.
        let (mut header, weights) = read_header(&dense).unwrap();
        header.model = ModelKind::Conv;
        header.code_activation = Some(CodeActivation::Relu); // what a conv header says; a linear one is refused first
        let header = serde_json::to_vec(&header).unwrap();
        let mut forged = dense[..8].to_vec();
        forged.extend_from_slice(&(header.len() as u32).to_le_bytes());
        forged.extend_from_slice(&header);
        forged.extend_from_slice(weights);
        assert!(matches!(refused(&forged, None), ModelFileError::Weights { .. }));
    }

    #[test]
    fn the_code_activation_round_trips_and_older_files_load_with_the_models_default() {
        let images = test_images(8);
        let batch = images.batch(&(0..8).collect::<Vec<_>>(), &device());
        let relu = seeded(ModelKind::Dense, Some(CodeActivation::Relu), 2);
        let bytes = save(&relu, serde_json::Value::Null).unwrap();
        let (loaded, header) = load(&bytes, Some(ModelKind::Dense), &device()).unwrap();
        assert_eq!(header.code_activation, Some(CodeActivation::Relu));
        assert_eq!(loaded.code_activation(), CodeActivation::Relu);
        let reconstruct = |m: &Autoencoder| m.forward(batch.clone()).into_data().try_into_vec::<f32>().unwrap();
        assert_eq!(reconstruct(&loaded), reconstruct(&relu));

        // A file written before the setting existed has no such field: a dense one is linear.
        let linear = seeded(ModelKind::Dense, None, 2);
        let old = edit_header(&save(&linear, serde_json::Value::Null).unwrap(), |h| {
            assert!(h.remove("code_activation").is_some());
        });
        assert!(!String::from_utf8_lossy(&old).contains("code_activation"));
        let (loaded, header) = load(&old, None, &device()).unwrap();
        assert_eq!((header.code_activation, loaded.code_activation()), (None, CodeActivation::Linear));
        assert_eq!(reconstruct(&loaded), reconstruct(&linear));
        // ... and a conv one has its ReLU code.
        let conv = save(&ModelKind::Conv.init(None, &device()), serde_json::Value::Null).unwrap();
        let old_conv = edit_header(&conv, |h| {
            h.remove("code_activation");
        });
        assert_eq!(load(&old_conv, None, &device()).unwrap().0.code_activation(), CodeActivation::Relu);

        // A header that asks for what no model can be is refused, not guessed.
        let conv_linear = edit_header(&conv, |h| {
            h.insert("code_activation".into(), "linear".into());
        });
        assert!(matches!(load(&conv_linear, None, &device()), Err(ModelFileError::Header(_))));
        let unknown = edit_header(&bytes, |h| {
            h.insert("code_activation".into(), "tanh".into());
        });
        assert!(matches!(load(&unknown, None, &device()), Err(ModelFileError::Header(_))));
    }

    #[test]
    fn model_files_without_a_checksum_still_load() {
        for (kind, latent) in [(ModelKind::Dense, None), (ModelKind::Conv, None), (ModelKind::Dense, Some(2)), (ModelKind::Conv, Some(3))] {
            let file = save(&kind.init(latent, &device()), json!({"epochs": 1, "images": 64})).unwrap();
            let old = edit_header(&file, |h| {
                assert!(h.remove("weights_crc32").is_some());
            });
            let (_, header) = load(&old, None, &device()).expect("a file written before the checksum should load");
            assert_eq!(header.weights_crc32, None);
        }
    }

    #[test]
    fn crc32_is_the_standard_one() {
        // The check value every CRC-32/ISO-HDLC implementation gives for "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
    }
}
