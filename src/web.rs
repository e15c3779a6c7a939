//! The page's typed boundary: the only file that says `wasm_bindgen`.
//!
//! One exported object, [`Lab`], owns the device, the data, the model and its optimizer. Typed
//! arrays cross the boundary (`Uint8Array` chunks in, `Float32Array` pixels and losses out) and
//! every error becomes a JS `Error` whose message a person can act on. Calls into one `Lab` must
//! not overlap (wasm-bindgen refuses a second call while an async one is pending): the page
//! sends them through one queue.

use std::cell::RefCell;

use burn::prelude::*;
use wasm_bindgen::prelude::*;

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE, MnistSet};
use crate::digit::mnist_style;
use crate::model::{Autoencoder, ModelKind};
use crate::train::{Trainer, TrainingConfig, evaluate, read_floats};

/// Images per forward pass when evaluating or reconstructing: large enough to keep the number of
/// GPU dispatches small, small enough for any WebGPU device's buffer limits.
const INFERENCE_BATCH: usize = 250;

thread_local! {
    // WebGPU can be initialised once per page; a second `Lab` reuses the first device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

#[wasm_bindgen(start)]
fn start() {
    console_error_panic_hook::set_once();
}

fn js_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

#[wasm_bindgen]
pub struct Lab {
    backend: &'static str,
    device: Device,
    train: MnistSet,
    test: MnistSet,
    trainer: Option<Trainer>,
}

#[wasm_bindgen]
impl Lab {
    /// Opens a device: `"webgpu"` (burn-wgpu on the browser's WebGPU) or `"cpu"` (burn's flex
    /// backend compiled into this module).
    pub async fn create(backend: String) -> Result<Lab, JsError> {
        let (backend, device) = match backend.as_str() {
            "webgpu" => ("webgpu", webgpu_device().await?),
            "cpu" => ("cpu", Device::flex()),
            other => return Err(js_error(format!("unknown backend {other:?}: choose \"webgpu\" or \"cpu\""))),
        };
        Ok(Lab { backend, device, train: MnistSet::default(), test: MnistSet::default(), trainer: None })
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
    }

    /// A fresh model of `model` (`"dense"` or `"conv"`), a fresh Adam optimizer, and the first
    /// epoch's shuffle of the training images.
    pub fn reset(&mut self, model: &str, batch_size: u32, learning_rate: f64, seed: u32) -> Result<(), JsError> {
        let kind: ModelKind = model.parse().map_err(js_error)?;
        let config = TrainingConfig {
            batch_size: batch_size as usize,
            learning_rate,
            seed: u64::from(seed),
            ..TrainingConfig::new(kind)
        };
        // Only replace the current model once the new one exists: a refused reset loses nothing.
        self.trainer = Some(Trainer::new(config, &self.device, self.train.len()).map_err(js_error)?);
        Ok(())
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

    /// Runs up to `max_steps` training batches, never past the end of the current epoch, and
    /// resolves to each batch's loss.
    pub async fn step(&mut self, max_steps: u32) -> Result<Vec<f32>, JsError> {
        let trainer = self.trainer.as_mut().ok_or_else(|| js_error("no model yet: reset one first"))?;
        if trainer.train_len() != self.train.len() {
            return Err(js_error("the training images changed since the model was made: reset it"));
        }
        trainer.run(&self.train, max_steps as usize).await.map_err(js_error)
    }

    /// Mean squared error per pixel over every loaded test image.
    pub async fn evaluate(&self) -> Result<f32, JsError> {
        let model = self.inference_model()?;
        evaluate(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)
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
        let model = self.inference_model()?;
        let mut out = Vec::with_capacity(pixels.len());
        for images in self.images(&pixels)? {
            out.extend(read_floats(model.forward(images)).await.map_err(js_error)?);
        }
        Ok(out)
    }

    /// The latent codes (`n * latentSize` numbers) of `n` images given as `n * 784` pixels.
    pub async fn encode(&self, pixels: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let model = self.inference_model()?;
        let mut out = Vec::new();
        for images in self.images(&pixels)? {
            out.extend(read_floats(model.encode(images)).await.map_err(js_error)?);
        }
        Ok(out)
    }
}

impl Lab {
    fn inference_model(&self) -> Result<Autoencoder, JsError> {
        let trainer = self.trainer.as_ref().ok_or_else(|| js_error("no model yet: reset one first"))?;
        Ok(trainer.inference_model())
    }

    /// Checks `pixels` and cuts it into `[batch, 28, 28]` tensors on the device.
    fn images(&self, pixels: &[f32]) -> Result<Vec<Tensor<3>>, JsError> {
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

async fn webgpu_device() -> Result<Device, JsError> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options().init_async().await.map_err(|e| {
        js_error(format!(
            "WebGPU is not available in this browser ({e}). Use a recent Chrome or Edge, or enable WebGPU; the CPU backend still works"
        ))
    })?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// Makes a drawing (`width * height` ink values in [0, 1], row-major) into a 28x28 MNIST-style
/// image: the stroke's box scaled into 20x20 and centred by its centre of mass.
#[wasm_bindgen(js_name = prepareDrawing)]
pub fn prepare_drawing(ink: &[f32], width: u32, height: u32) -> Result<Vec<f32>, JsError> {
    mnist_style(ink, width as usize, height as usize).map_err(js_error)
}
