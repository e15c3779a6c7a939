//! The `Lab`: the device, the data, the model and its optimizer, and the methods that train,
//! save, load and reconstruct.

use burn::prelude::*;
use wasm_bindgen::prelude::*;

use super::device::{run_constructors, to_host, webgpu_device};
use super::reports::{Evaluation, GpuMemory, StepShare};
use super::{js_error, no_predictors};
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE, MnistSet};
use crate::evaluate::{encode_set, test_pass};
use crate::model::{Autoencoder, CodeActivation, ModelKind};
use crate::model_file;
use crate::pytorch::{self, CodeSource};
use crate::predict::{self, Codes, Knn, LinearClassifier, Projection};
use crate::train::{GradientShare, Trainer, TrainingConfig, read_floats};

/// Images per forward pass when evaluating or reconstructing: large enough to keep the number of
/// GPU dispatches small, small enough that the dense model's widest layer (125 x 784 x 128) still
/// runs in the broadcast form, which needs no slow-to-compile matrix-product kernels.
pub(super) const INFERENCE_BATCH: usize = 125;

#[wasm_bindgen]
pub struct Lab {
    pub(super) backend: &'static str,
    pub(super) device: Device,
    pub(super) train: MnistSet,
    pub(super) test: MnistSet,
    pub(super) trainer: Option<Trainer>,
    /// Built from the current model's codes by `fitPredictors`; dropped when the model changes.
    pub(super) predictors: Option<Predictors>,
    /// The parts gathered so far of a step cut over a worker pool (`shareGradients`, `addShare`).
    pending: Option<PendingStep>,
}

/// A step cut over a worker pool, while its parts come in: for the model at `steps` steps.
struct PendingStep {
    steps: usize,
    parts: Vec<Option<GradientShare>>,
}

/// What `fitPredictors` learns from one model's codes.
pub(super) struct Predictors {
    /// Steps the model had taken when these were fitted, to notice a stale fit.
    pub(super) steps: usize,
    pub(super) knn: Knn,
    pub(super) linear: LinearClassifier,
    pub(super) test_codes: Codes,
    pub(super) projection: Projection,
}

#[wasm_bindgen]
impl Lab {
    /// Opens a device: `"webgpu"` (burn-wgpu on the browser's WebGPU) or `"cpu"` (burn's flex
    /// backend compiled into this module).
    pub async fn create(backend: String) -> Result<Lab, JsError> {
        run_constructors();
        let (backend, device) = match backend.as_str() {
            "webgpu" => ("webgpu", webgpu_device().await?),
            "cpu" => ("cpu", Device::flex()),
            other => return Err(js_error(format!("unknown backend {other:?}: choose \"webgpu\" or \"cpu\""))),
        };
        Ok(Lab { backend, device, train: MnistSet::default(), test: MnistSet::default(), trainer: None, predictors: None, pending: None })
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.to_string()
    }

    /// Parses one data chunk (gzip of an images IDX record then a labels IDX record) and appends
    /// it to the `"train"` or `"test"` images. Returns the number of images added.
    #[wasm_bindgen(js_name = addData)]
    pub fn add_data(&mut self, split: &str, chunk: &[u8]) -> Result<u32, JsError> {
        let set = match split {
            "train" => &mut self.train,
            "test" => &mut self.test,
            other => return Err(js_error(format!("unknown split {other:?}: choose \"train\" or \"test\""))),
        };
        let images = MnistSet::from_chunk(chunk, &format!("{split} chunk")).map_err(js_error)?;
        set.extend(&images);
        if split == "train" {
            self.training_set_changed();
        }
        Ok(images.len() as u32)
    }

    #[wasm_bindgen(getter, js_name = trainCount)]
    pub fn train_count(&self) -> u32 {
        self.train.len() as u32
    }

    #[wasm_bindgen(getter, js_name = testCount)]
    pub fn test_count(&self) -> u32 {
        self.test.len() as u32
    }

    /// Forgets all images (the model stays, but needs `reset` before it trains again).
    #[wasm_bindgen(js_name = clearData)]
    pub fn clear_data(&mut self) {
        self.train = MnistSet::default();
        self.test = MnistSet::default();
        self.training_set_changed();
    }

    /// A fresh model of `model` (`"dense"` or `"conv"`), a fresh Adam optimizer, and the first
    /// epoch's shuffle of the training images.
    /// `latent` 0 keeps the seed's latent size (3 dense, 64 conv). `code_activation` is what
    /// follows the code layer, `"linear"` or `"relu"` (the seed's text); left out or `""`, the
    /// model's default: linear for dense, ReLU for conv, which refuses `"linear"`.
    pub fn reset(
        &mut self,
        model: &str,
        batch_size: u32,
        learning_rate: f64,
        seed: u32,
        latent: u32,
        code_activation: Option<String>,
    ) -> Result<(), JsError> {
        let code_activation = match code_activation.as_deref() {
            None | Some("") => None,
            Some(name) => Some(name.parse::<CodeActivation>().map_err(js_error)?),
        };
        let config = self.config(model, batch_size, learning_rate, seed, latent, code_activation)?;
        // Only replace the current model once the new one exists: a refused reset loses nothing.
        self.trainer = Some(Trainer::new(config, &self.device, self.train.len()).map_err(js_error)?);
        self.predictors = None;
        self.pending = None;
        Ok(())
    }

    /// The current model as a model file (the lab's header, then burn's record), with `summary`
    /// (JSON text from the page: epochs, images, losses) kept in the header.
    pub async fn save(&self, summary: String) -> Result<Vec<u8>, JsError> {
        let trainer = self.trainer.as_ref().ok_or_else(|| js_error("no model to save yet: train one first"))?;
        let summary: serde_json::Value =
            serde_json::from_str(&summary).map_err(|e| js_error(format!("the training summary is not JSON: {e}")))?;
        let model = trainer.inference_model().await.map_err(js_error)?;
        // burn writes a record by reading each parameter synchronously, which WebGPU in a browser
        // cannot do: read them asynchronously first into a copy on the CPU backend.
        let model = if self.backend == "webgpu" { to_host(model).await? } else { model };
        model_file::save(&model, summary).map_err(js_error)
    }

    /// Replaces the model with the one in a model file; training goes on from it with a fresh
    /// optimizer. A bad file changes nothing. Told apart by content: the lab's own model file must
    /// hold a `model` model, and returns its training summary as JSON text; a PyTorch state_dict
    /// in safetensors is whichever model its tensors show, `code_activation` (as `reset` takes it)
    /// answering what they cannot (a dense code's activation), and returns `{"imported": what was
    /// read and assumed}`.
    pub fn load(
        &mut self,
        bytes: &[u8],
        model: &str,
        batch_size: u32,
        learning_rate: f64,
        seed: u32,
        code_activation: Option<String>,
    ) -> Result<String, JsError> {
        let (loaded, summary) = if pytorch::is_safetensors(bytes) {
            let (loaded, imported) = self.import(bytes, code_activation.as_deref())?;
            (loaded, serde_json::json!({ "imported": imported }))
        } else {
            let kind: ModelKind = model.parse().map_err(js_error)?;
            let (loaded, header) = model_file::load(bytes, Some(kind), &self.device).map_err(js_error)?;
            (loaded, header.training)
        };
        if self.train.is_empty() {
            return Err(js_error("load training images before a model file"));
        }
        // The file says what follows the code layer (or the import was asked); the model was built with it.
        let kind = loaded.kind().name();
        let config = self.config(kind, batch_size, learning_rate, seed, loaded.latent_size() as u32, Some(loaded.code_activation()))?;
        self.trainer = Some(Trainer::resume(config, loaded, self.device.clone(), self.train.len()));
        self.predictors = None;
        self.pending = None;
        Ok(summary.to_string())
    }

    /// The current model as a PyTorch state_dict in safetensors: the study's `encoder` and
    /// `decoder` modules' names and layouts, for `load_state_dict(load_file(...), strict=True)`.
    #[wasm_bindgen(js_name = savePytorch)]
    pub async fn save_pytorch(&self) -> Result<Vec<u8>, JsError> {
        let model = self.inference_model().await?;
        // Each parameter is read synchronously, which WebGPU in a browser cannot do (as in `save`).
        let model = if self.backend == "webgpu" { to_host(model).await? } else { model };
        pytorch::save(&model).map_err(js_error)
    }

    #[wasm_bindgen(getter)]
    pub fn model(&self) -> Option<String> {
        self.trainer.as_ref().map(|t| t.config().model.to_string())
    }

    #[wasm_bindgen(getter, js_name = parameterCount)]
    pub fn parameter_count(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.model().num_params() as u32)
    }

    #[wasm_bindgen(getter, js_name = latentSize)]
    pub fn latent_size(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.model().latent_size() as u32)
    }

    /// What follows the current model's code layer: `"linear"` or `"relu"`.
    #[wasm_bindgen(getter, js_name = codeActivation)]
    pub fn code_activation(&self) -> Option<String> {
        self.trainer.as_ref().map(|t| t.model().code_activation().to_string())
    }

    /// Completed epochs.
    #[wasm_bindgen(getter)]
    pub fn epoch(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.epoch() as u32)
    }

    /// Batches done in the current epoch.
    #[wasm_bindgen(getter)]
    pub fn batch(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.batch() as u32)
    }

    #[wasm_bindgen(getter, js_name = batchesPerEpoch)]
    pub fn batches_per_epoch(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.batches_per_epoch() as u32)
    }

    #[wasm_bindgen(getter)]
    pub fn steps(&self) -> u32 {
        self.trainer.as_ref().map_or(0, |t| t.steps() as u32)
    }

    /// burn's memory pool report on WebGPU; `undefined` on the CPU backend, which has no pool.
    #[wasm_bindgen(getter, js_name = gpuMemory)]
    pub fn gpu_memory(&self) -> Option<GpuMemory> {
        self.device.memory_pool_usage().map(|usage| GpuMemory {
            bytes_in_use: usage.bytes_in_use as f64,
            bytes_reserved: usage.bytes_reserved as f64,
            allocations: usage.number_allocs as f64,
        })
    }

    /// Runs up to `max_steps` training batches, never past the end of the current epoch, and
    /// resolves to each batch's loss.
    pub async fn step(&mut self, max_steps: u32) -> Result<Vec<f32>, JsError> {
        let trainer = self.trainer.as_mut().ok_or_else(|| js_error("no model yet: reset one first"))?;
        if trainer.train_len() != self.train.len() {
            return Err(js_error(CHANGED_IMAGES));
        }
        self.compile_step().await;
        let trainer = self.trainer.as_mut().expect("checked above");
        trainer.run(&self.train, max_steps as usize).await.map_err(js_error)
    }

    /// Part `part` (from 0) of `parts` of the next batch's step, for a step cut over the page's
    /// pool of workers, each with its own Lab holding the same model and training images: that
    /// part's share of the loss and its flat gradient, for the other workers' `addShare`. The
    /// Lab keeps its own part; `applyShares` takes the step once every part is in.
    #[wasm_bindgen(js_name = shareGradients)]
    pub async fn share_gradients(&mut self, part: u32, parts: u32) -> Result<StepShare, JsError> {
        let trainer = self.trainer.as_mut().ok_or_else(|| js_error("no model yet: reset one first"))?;
        if trainer.train_len() != self.train.len() {
            return Err(js_error(CHANGED_IMAGES));
        }
        let share = trainer.share_gradients(&self.train, part as usize, parts as usize).await.map_err(js_error)?;
        // Copied straight from the part the Lab keeps into a JS array, not cloned in wasm first.
        let out = StepShare { loss: share.loss, gradients: js_sys::Float32Array::from(&share.gradients[..]) };
        self.pending_part(part, parts)?.replace(share);
        Ok(out)
    }

    /// Another worker's part `part` of `parts` of the same step (its `shareGradients`).
    #[wasm_bindgen(js_name = addShare)]
    pub fn add_share(&mut self, part: u32, parts: u32, loss: f32, gradients: Vec<f32>) -> Result<(), JsError> {
        let expected = self.trainer.as_ref().map_or(0, |t| t.model().num_params());
        if gradients.len() != expected {
            return Err(js_error(format!("part {part}'s gradient has {} numbers, this model {expected}", gradients.len())));
        }
        self.pending_part(part, parts)?.replace(GradientShare { loss, gradients });
        Ok(())
    }

    /// Takes the step whose parts `shareGradients` and `addShare` gathered: their gradients added
    /// in part order (the same sum, to the bit, in every worker) and Adam. Returns the batch's
    /// loss. Refused, changing nothing, while a part is missing.
    #[wasm_bindgen(js_name = applyShares)]
    pub fn apply_shares(&mut self) -> Result<f32, JsError> {
        let trainer = self.trainer.as_mut().ok_or_else(|| js_error("no model yet: reset one first"))?;
        let pending = self.pending.take().ok_or_else(|| js_error("no part of a step has been computed"))?;
        if pending.steps != trainer.steps() {
            return Err(js_error("the parts gathered are of an earlier step"));
        }
        let missing: Vec<String> = pending.parts.iter().enumerate().filter(|(_, p)| p.is_none()).map(|(k, _)| k.to_string()).collect();
        if !missing.is_empty() {
            let message = format!("parts {} of {} are missing", missing.join(", "), pending.parts.len());
            self.pending = Some(pending);
            return Err(js_error(message));
        }
        trainer.apply_shares(pending.parts.into_iter().flatten().collect()).map_err(js_error)
    }

    /// Mean squared error per pixel over every loaded test image, and how many code numbers are
    /// 0 for all of them, from one pass.
    pub async fn evaluate(&self) -> Result<Evaluation, JsError> {
        let model = self.inference_model().await?;
        let pass = test_pass(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        Ok(Evaluation { test_mse: pass.mse, dead_code_units: predict::dead_code_units(&pass.codes) as u32 })
    }

    /// How many of the current model's code numbers are 0 for every loaded test image (dead: a
    /// ReLU code number that no image switches on). Encodes the test images; `evaluate` and
    /// `fitPredictors` report the same count from the codes they make anyway.
    #[wasm_bindgen(js_name = deadCodeUnits)]
    pub async fn dead_code_units(&self) -> Result<u32, JsError> {
        let model = self.inference_model().await?;
        if self.test.is_empty() {
            return Err(js_error("no test images are loaded"));
        }
        let codes = encode_set(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        Ok(predict::dead_code_units(&codes) as u32)
    }

    /// `count` test images from `start`, pixels in [0, 1], row-major 28x28 each.
    #[wasm_bindgen(js_name = testPixels)]
    pub fn test_pixels(&self, start: u32, count: u32) -> Vec<f32> {
        let range = self.test.range(start as usize, count as usize);
        range.pixels_f32(0..range.len())
    }

    #[wasm_bindgen(js_name = testLabels)]
    pub fn test_labels(&self, start: u32, count: u32) -> Vec<u8> {
        self.test.range(start as usize, count as usize).labels().to_vec()
    }

    /// The model's reconstructions of `n` images given as `n * 784` pixels in [0, 1].
    pub async fn reconstruct(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let model = self.inference_model().await?;
        let mut out = Vec::with_capacity(pixels.len());
        for images in self.images(&pixels)? {
            out.extend(read_floats(model.forward(images)).await.map_err(js_error)?);
        }
        Ok(out)
    }

    /// The latent codes (`n * latentSize` numbers) of `n` images given as `n * 784` pixels.
    pub async fn encode(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let model = self.inference_model().await?;
        let mut out = Vec::new();
        for images in self.images(&pixels)? {
            out.extend(read_floats(model.encode(images)).await.map_err(js_error)?);
        }
        Ok(out)
    }
}

const CHANGED_IMAGES: &str = "the training images changed since the model was made: reset it";

impl Lab {
    /// Tells the trainer its training images changed, so that the GPU step lets go of its copy.
    fn training_set_changed(&mut self) {
        if let Some(trainer) = self.trainer.as_mut() {
            trainer.training_set_changed();
        }
    }

    /// Before a model's first step, compiles its GPU step's kernels (none on the CPU), a task
    /// each, so that the GPU process compiles each one's pipeline while the next is built here,
    /// rather than all of them after the step's launches (`GpuStep::compile_next`). Later steps
    /// find nothing left to compile.
    async fn compile_step(&mut self) {
        #[cfg(feature = "webgpu")]
        while self.trainer.as_mut().is_some_and(Trainer::compile_next_kernel) {
            super::device::next_task().await;
        }
    }

    /// The slot for part `part` of `parts` of the current step, a fresh set of slots when the
    /// model has stepped (or been replaced) since the last part, or the number of parts changed.
    fn pending_part(&mut self, part: u32, parts: u32) -> Result<&mut Option<GradientShare>, JsError> {
        let steps = self.trainer.as_ref().ok_or_else(|| js_error("no model yet: reset one first"))?.steps();
        if part >= parts {
            return Err(js_error(format!("part {part} of {parts}: parts are numbered from 0 to {parts} - 1")));
        }
        let parts = parts as usize;
        if !self.pending.as_ref().is_some_and(|p| p.steps == steps && p.parts.len() == parts) {
            self.pending = Some(PendingStep { steps, parts: (0..parts).map(|_| None).collect() });
        }
        Ok(&mut self.pending.as_mut().expect("just made").parts[part as usize])
    }

    /// A PyTorch state_dict's model, and one line saying what was read and assumed. `code` is the
    /// page's code activation field: the dense model's (the conv model's code is always ReLU, so
    /// it is not offered where a tensor is a convolution's), and only where the file's metadata
    /// (written by the lab's export) does not name one.
    fn import(&self, bytes: &[u8], code: Option<&str>) -> Result<(Autoencoder, String), JsError> {
        let file = pytorch::read(bytes).map_err(js_error)?;
        let convolution = file.tensors.iter().any(|t| t.shape.len() == 4);
        let code = match code {
            Some(name) if !name.is_empty() && !convolution && !file.metadata.contains_key("code_activation") => {
                Some(name.parse::<CodeActivation>().map_err(js_error)?)
            }
            _ => None,
        };
        let imported = pytorch::from_safetensors(file, code, &self.device).map_err(js_error)?;
        let mut text = imported.describe();
        if imported.code_source == CodeSource::Asked {
            text.push_str(", as the Training panel's code activation says (the file cannot say it)");
        }
        Ok((imported.model, text))
    }

    pub(super) fn config(
        &self,
        model: &str,
        batch_size: u32,
        learning_rate: f64,
        seed: u32,
        latent: u32,
        code_activation: Option<CodeActivation>,
    ) -> Result<TrainingConfig, JsError> {
        let kind: ModelKind = model.parse().map_err(js_error)?;
        let config = TrainingConfig::new(kind)
            .with_batch_size(batch_size as usize)
            .with_learning_rate(learning_rate)
            .with_seed(u64::from(seed))
            .with_latent((latent > 0).then_some(latent as usize))
            .with_code_activation(code_activation);
        config.validate().map_err(js_error)?;
        Ok(config)
    }

    pub(super) async fn decode_codes(&self, codes: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let model = self.inference_model().await?;
        let dim = model.latent_size();
        let n = codes.len() / dim;
        let codes = Tensor::<2>::from_data(TensorData::new(codes, [n, dim]), &self.device);
        read_floats(model.decode(codes)).await.map_err(js_error)
    }

    pub(super) fn predictors(&self) -> Result<&Predictors, JsError> {
        self.predictors.as_ref().ok_or_else(no_predictors)
    }

    /// The current model, for inference: where the GPU step trains it, with its parameters read
    /// back from the GPU (one read, each time the page needs the model).
    pub(super) async fn inference_model(&self) -> Result<Autoencoder, JsError> {
        let trainer = self.trainer.as_ref().ok_or_else(|| js_error("no model yet: reset one first"))?;
        trainer.inference_model().await.map_err(js_error)
    }

    /// Checks `pixels` and cuts it into `[batch, 28, 28]` tensors on the device.
    pub(super) fn images(&self, pixels: &[f32]) -> Result<Vec<Tensor<3>>, JsError> {
        if pixels.is_empty() || pixels.len() % IMAGE_PIXELS != 0 {
            return Err(js_error(format!(
                "expected whole {IMAGE_SIDE}x{IMAGE_SIDE} images ({IMAGE_PIXELS} values each), got {} values",
                pixels.len()
            )));
        }
        if let Some(bad) = pixels.iter().find(|p| !(0.0..=1.0).contains(*p)) {
            return Err(js_error(format!("pixels must lie in [0, 1], found {bad}")));
        }
        Ok(pixels
            .chunks(INFERENCE_BATCH * IMAGE_PIXELS)
            .map(|chunk| {
                let n = chunk.len() / IMAGE_PIXELS;
                Tensor::from_data(TensorData::new(chunk.to_vec(), [n, IMAGE_SIDE, IMAGE_SIDE]), &self.device)
            })
            .collect())
    }
}

