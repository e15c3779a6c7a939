//! The page's typed boundary: the only file that says `wasm_bindgen`.
//!
//! One exported object, [`Lab`], owns the device, the data, the model and its optimizer. Typed
//! arrays cross the boundary (`Uint8Array` chunks in, `Float32Array` pixels and losses out) and
//! every error becomes a JS `Error` whose message a person can act on. Calls into one `Lab` must
//! not overlap (wasm-bindgen refuses a second call while an async one is pending): the page
//! sends them through one queue.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn::module::{ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;
use wasm_bindgen::prelude::*;

use crate::checkpoint;
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE, MnistSet};
use crate::digit::mnist_style;
use crate::model::{Autoencoder, CodeActivation, ModelKind};
use crate::predict::{self, Codes, Knn, LinearClassifier, LinearConfig, Projection};
use crate::train::{Trainer, TrainingConfig, encode_set, evaluate, read_floats};

/// Images per forward pass when evaluating or reconstructing: large enough to keep the number of
/// GPU dispatches small, small enough that the dense model's widest layer (125 x 784 x 128) still
/// runs in the broadcast form, which needs no slow-to-compile matrix-product kernels.
const INFERENCE_BATCH: usize = 125;

thread_local! {
    // WebGPU can be initialised once per page; a second `Lab` reuses the first device.
    static WEBGPU: RefCell<Option<Device>> = const { RefCell::new(None) };
}

unsafe extern "C" {
    /// Runs the module's static constructors (the linker writes it). cubecl's kernel optimizer
    /// registers its IR types through them (the `inventory` crate).
    fn __wasm_call_ctors();
}

/// Runs the constructors, once. This call matters for speed: when no code calls
/// `__wasm_call_ctors`, wasm-ld makes every export rerun all the constructors on each call
/// ("command" modules), and the glue calls exports thousands of times per training step (measured
/// on a dense step in Chromium: 2.4 s of constructor reruns in a 2.9 s step). Called from `start`
/// for the page, and from `Lab::create` for harnesses (wasm-bindgen-test) that skip `start`.
fn run_constructors() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: runs once, before any code that relies on what the constructors register.
    ONCE.call_once(|| unsafe { __wasm_call_ctors() });
}

/// The system allocator, counting the bytes it has handed out and not had back. The wasm memory
/// only ever grows, so its size says where the heap peaked, not what is still in use; this count
/// is what the page's leak check reads.
struct CountingAllocator;

static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call goes straight to `System`; the counter only observes sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            LIVE_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            LIVE_BYTES.fetch_add(new_size, Ordering::Relaxed);
            LIVE_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Bytes of the Rust heap in use now (data, models, buffers of the CPU backend).
#[wasm_bindgen(js_name = heapBytes)]
pub fn heap_bytes() -> f64 {
    LIVE_BYTES.load(Ordering::Relaxed) as f64
}

#[wasm_bindgen(start)]
fn start() {
    run_constructors();
    console_error_panic_hook::set_once();
}

fn js_error(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn no_predictors() -> JsError {
    js_error("fit the predictors first")
}

#[wasm_bindgen]
pub struct Lab {
    backend: &'static str,
    device: Device,
    train: MnistSet,
    test: MnistSet,
    trainer: Option<Trainer>,
    /// Built from the current model's codes by `fitPredictors`; dropped when the model changes.
    predictors: Option<Predictors>,
}

/// What `fitPredictors` learns from one model's codes.
struct Predictors {
    /// Steps the model had taken when these were fitted, to notice a stale fit.
    steps: usize,
    knn: Knn,
    linear: LinearClassifier,
    test_codes: Codes,
    projection: Projection,
}

/// Test accuracy of both predictors, with their confusion matrices (`confusion[10 * true +
/// predicted]`) and the linear classifier's loss per epoch.
#[wasm_bindgen]
pub struct PredictorReport {
    #[wasm_bindgen(readonly, js_name = knnAccuracy)]
    pub knn_accuracy: f32,
    #[wasm_bindgen(readonly, js_name = linearAccuracy)]
    pub linear_accuracy: f32,
    #[wasm_bindgen(readonly)]
    pub k: u32,
    #[wasm_bindgen(readonly, js_name = trainCodes)]
    pub train_codes: u32,
    #[wasm_bindgen(readonly, js_name = testCodes)]
    pub test_codes: u32,
    /// Code numbers that are 0 for every test image: dead, so they carry nothing to the decoder.
    #[wasm_bindgen(readonly, js_name = deadCodeUnits)]
    pub dead_code_units: u32,
    knn_confusion: Vec<u32>,
    linear_confusion: Vec<u32>,
    linear_losses: Vec<f32>,
}

#[wasm_bindgen]
impl PredictorReport {
    #[wasm_bindgen(getter, js_name = knnConfusion)]
    pub fn knn_confusion(&self) -> Vec<u32> {
        self.knn_confusion.clone()
    }

    #[wasm_bindgen(getter, js_name = linearConfusion)]
    pub fn linear_confusion(&self) -> Vec<u32> {
        self.linear_confusion.clone()
    }

    #[wasm_bindgen(getter, js_name = linearLosses)]
    pub fn linear_losses(&self) -> Vec<f32> {
        self.linear_losses.clone()
    }
}

/// What burn's memory pool holds on a GPU device, for the page's leak check.
#[wasm_bindgen]
pub struct GpuMemory {
    /// Bytes the live tensors use.
    #[wasm_bindgen(readonly, js_name = bytesInUse)]
    pub bytes_in_use: f64,
    /// Bytes the pool has taken from the device, free pages kept for reuse included.
    #[wasm_bindgen(readonly, js_name = bytesReserved)]
    pub bytes_reserved: f64,
    /// Live allocations.
    #[wasm_bindgen(readonly)]
    pub allocations: f64,
}

/// Everything the page shows about one image: its reconstruction, both predictors' scores for
/// each digit, and where its code falls on the latent map.
#[wasm_bindgen]
pub struct Reading {
    reconstruction: Vec<f32>,
    knn: Vec<f32>,
    linear: Vec<f32>,
    #[wasm_bindgen(readonly)]
    pub x: f32,
    #[wasm_bindgen(readonly)]
    pub y: f32,
}

#[wasm_bindgen]
impl Reading {
    #[wasm_bindgen(getter)]
    pub fn reconstruction(&self) -> Vec<f32> {
        self.reconstruction.clone()
    }

    /// Vote share of each digit among the k nearest training codes.
    #[wasm_bindgen(getter)]
    pub fn knn(&self) -> Vec<f32> {
        self.knn.clone()
    }

    /// The linear classifier's probability of each digit.
    #[wasm_bindgen(getter)]
    pub fn linear(&self) -> Vec<f32> {
        self.linear.clone()
    }
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
        Ok(Lab { backend, device, train: MnistSet::default(), test: MnistSet::default(), trainer: None, predictors: None })
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
        Ok(())
    }

    /// The current model as a model file (the lab's header, then burn's record), with `summary`
    /// (JSON text from the page: epochs, images, losses) kept in the header.
    pub async fn save(&self, summary: String) -> Result<Vec<u8>, JsError> {
        let trainer = self.trainer.as_ref().ok_or_else(|| js_error("no model to save yet: train one first"))?;
        let summary: serde_json::Value =
            serde_json::from_str(&summary).map_err(|e| js_error(format!("the training summary is not JSON: {e}")))?;
        let model = trainer.inference_model();
        // burn writes a record by reading each parameter synchronously, which WebGPU in a browser
        // cannot do: read them asynchronously first into a copy on the CPU backend.
        let model = if self.backend == "webgpu" { to_host(model).await? } else { model };
        checkpoint::save(&model, summary).map_err(js_error)
    }

    /// Replaces the model with the one in a model file, which must hold a `model` model; training
    /// goes on from it with a fresh optimizer. A bad file changes nothing. Returns the file's
    /// training summary as JSON text.
    pub fn load(&mut self, bytes: &[u8], model: &str, batch_size: u32, learning_rate: f64, seed: u32) -> Result<String, JsError> {
        let kind: ModelKind = model.parse().map_err(js_error)?;
        let (loaded, header) = checkpoint::load(bytes, Some(kind), &self.device).map_err(js_error)?;
        if self.train.is_empty() {
            return Err(js_error("load training images before a model file"));
        }
        // The file's header says what follows the code layer; the model was built with it.
        let config = self.config(model, batch_size, learning_rate, seed, header.latent as u32, Some(loaded.code_activation()))?;
        self.trainer = Some(Trainer::resume(config, loaded, self.device.clone(), self.train.len()));
        self.predictors = None;
        Ok(header.training.to_string())
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
            return Err(js_error("the training images changed since the model was made: reset it"));
        }
        trainer.run(&self.train, max_steps as usize).await.map_err(js_error)
    }

    /// Mean squared error per pixel over every loaded test image.
    pub async fn evaluate(&self) -> Result<f32, JsError> {
        let model = self.inference_model()?;
        evaluate(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)
    }

    /// How many of the current model's code numbers are 0 for every loaded test image (dead: a
    /// ReLU code number that no image switches on). Encodes the test images; `fitPredictors`
    /// reports the same count from the codes it makes anyway.
    #[wasm_bindgen(js_name = deadCodeUnits)]
    pub async fn dead_code_units(&self) -> Result<u32, JsError> {
        let model = self.inference_model()?;
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

#[wasm_bindgen]
impl Lab {
    /// Encodes up to `max_train` training images and every test image with the current model,
    /// fits both predictors on the training codes (`k` neighbours; `linear_epochs` epochs of the
    /// linear classifier), scores them on the test codes, and sets up the latent map (PCA).
    #[wasm_bindgen(js_name = fitPredictors)]
    pub async fn fit_predictors(&mut self, max_train: u32, k: u32, linear_epochs: u32) -> Result<PredictorReport, JsError> {
        let model = self.inference_model()?;
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps());
        if self.test.is_empty() {
            return Err(js_error("no test images are loaded"));
        }
        let train = self.train.take((max_train as usize).clamp(1, self.train.len().max(1)));
        let train_codes = encode_set(&model, &train, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        let test_codes = encode_set(&model, &self.test, INFERENCE_BATCH, &self.device).await.map_err(js_error)?;
        let knn = Knn::new(train_codes.clone(), k.max(1) as usize);
        let config = LinearConfig { epochs: linear_epochs.max(1) as usize, ..LinearConfig::default() };
        let (linear, linear_losses) = LinearClassifier::fit(&train_codes, config);
        let knn_eval = predict::evaluate(&test_codes, |c| knn.scores(c)).map_err(js_error)?;
        let linear_eval = predict::evaluate(&test_codes, |c| linear.probabilities(c)).map_err(js_error)?;
        let projection = Projection::pca(&test_codes);
        let report = PredictorReport {
            knn_accuracy: knn_eval.accuracy,
            linear_accuracy: linear_eval.accuracy,
            k: knn.k() as u32,
            train_codes: train_codes.len() as u32,
            test_codes: test_codes.len() as u32,
            dead_code_units: predict::dead_code_units(&test_codes) as u32,
            knn_confusion: knn_eval.confusion.iter().flatten().copied().collect(),
            linear_confusion: linear_eval.confusion.iter().flatten().copied().collect(),
            linear_losses,
        };
        self.predictors = Some(Predictors { steps, knn, linear, test_codes, projection });
        Ok(report)
    }

    /// Whether predictors exist and were fitted on the model as it is now.
    #[wasm_bindgen(getter, js_name = predictorsFresh)]
    pub fn predictors_fresh(&self) -> bool {
        let steps = self.trainer.as_ref().map_or(0, |t| t.steps());
        self.predictors.as_ref().is_some_and(|p| p.steps == steps)
    }

    /// The latent map's projection: `"pca"`, or `"axes"` with code coordinates `x` and `y`.
    #[wasm_bindgen(js_name = setProjection)]
    pub fn set_projection(&mut self, kind: &str, x: u32, y: u32) -> Result<(), JsError> {
        let p = self.predictors.as_mut().ok_or_else(no_predictors)?;
        p.projection = match kind {
            "pca" => Projection::pca(&p.test_codes),
            "axes" => Projection::axes(&p.test_codes, x as usize, y as usize).map_err(|_| {
                js_error(format!("axes {x} and {y} must be two different coordinates below {}", p.test_codes.dim()))
            })?,
            other => return Err(js_error(format!("unknown projection {other:?}: choose \"pca\" or \"axes\""))),
        };
        Ok(())
    }

    /// The share of the codes' variance along each map axis (zeros for plain axes).
    #[wasm_bindgen(getter, js_name = mapExplained)]
    pub fn map_explained(&self) -> Vec<f32> {
        self.predictors.as_ref().map_or(vec![], |p| p.projection.explained.to_vec())
    }

    /// Every test image's code on the latent map, `[x0, y0, x1, y1, ...]` (labels: `testLabels`).
    #[wasm_bindgen(js_name = mapPoints)]
    pub fn map_points(&self) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        Ok((0..p.test_codes.len()).flat_map(|i| p.projection.project(p.test_codes.row(i))).collect())
    }

    /// The decoder's image (784 pixels) of the map point (`x`, `y`).
    #[wasm_bindgen(js_name = decodePoint)]
    pub async fn decode_point(&self, x: f32, y: f32) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        if !(x.is_finite() && y.is_finite()) {
            return Err(js_error("a map point must have finite coordinates"));
        }
        self.decode_codes(p.projection.unproject([x, y])).await
    }

    /// `points` images (784 pixels each) decoded along the straight line between the codes of
    /// test images `a` and `b`.
    pub async fn interpolate(&self, a: u32, b: u32, points: u32) -> Result<Vec<f32>, JsError> {
        let p = self.predictors()?;
        let n = p.test_codes.len();
        if a as usize >= n || b as usize >= n {
            return Err(js_error(format!("test images are numbered 0 to {}", n - 1)));
        }
        let path = predict::interpolate(p.test_codes.row(a as usize), p.test_codes.row(b as usize), points as usize);
        self.decode_codes(path).await
    }

    /// Reconstruction, digit scores and map position of one image (784 pixels in [0, 1]).
    pub async fn read(&self, pixels: Vec<f32>) -> Result<Reading, JsError> {
        let p = self.predictors()?;
        let model = self.inference_model()?;
        let images = self.images(&pixels)?;
        if images.len() != 1 || pixels.len() != IMAGE_PIXELS {
            return Err(js_error(format!("read takes one image of {IMAGE_PIXELS} pixels")));
        }
        let image = images.into_iter().next().expect("one image");
        let code = model.encode(image);
        let reconstruction = model.decode(code.clone());
        let code = read_floats(code).await.map_err(js_error)?;
        let reconstruction = read_floats(reconstruction).await.map_err(js_error)?;
        let knn = p.knn.scores(&code).map_err(js_error)?.to_vec();
        let linear = p.linear.probabilities(&code).map_err(js_error)?.to_vec();
        let [x, y] = p.projection.project(&code);
        Ok(Reading { reconstruction, knn, linear, x, y })
    }
}

impl Lab {
    fn config(
        &self,
        model: &str,
        batch_size: u32,
        learning_rate: f64,
        seed: u32,
        latent: u32,
        code_activation: Option<CodeActivation>,
    ) -> Result<TrainingConfig, JsError> {
        let kind: ModelKind = model.parse().map_err(js_error)?;
        let config = TrainingConfig {
            batch_size: batch_size as usize,
            learning_rate,
            seed: u64::from(seed),
            latent: (latent > 0).then_some(latent as usize),
            code_activation,
            ..TrainingConfig::new(kind)
        };
        config.validate().map_err(js_error)?;
        Ok(config)
    }

    async fn decode_codes(&self, codes: Vec<f32>) -> Result<Vec<f32>, JsError> {
        let model = self.inference_model()?;
        let dim = model.latent_size();
        let n = codes.len() / dim;
        let codes = Tensor::<2>::from_data(TensorData::new(codes, [n, dim]), &self.device);
        read_floats(model.decode(codes)).await.map_err(js_error)
    }

    fn predictors(&self) -> Result<&Predictors, JsError> {
        self.predictors.as_ref().ok_or_else(no_predictors)
    }

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

/// A copy of `model` on the CPU backend, its parameters read back in one async transfer.
async fn to_host(model: Autoencoder) -> Result<Autoencoder, JsError> {
    struct Flatten(Vec<Tensor<1>>);
    impl ModuleVisitor for Flatten {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let value = param.val();
            let n = value.shape().num_elements();
            self.0.push(value.reshape([n]));
        }
    }
    // Visits the parameters in the same order as `Flatten`, taking each one's values in turn.
    struct Refill {
        values: Vec<f32>,
        at: usize,
        device: Device,
    }
    impl ModuleMapper for Refill {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dims = param.val().dims();
            let n: usize = dims.iter().product();
            let values = self.values[self.at..self.at + n].to_vec();
            self.at += n;
            let device = self.device.clone();
            param.map(|_| Tensor::from_data(TensorData::new(values, dims), &device))
        }
    }

    let mut flat = Flatten(Vec::new());
    model.visit(&mut flat);
    let values = read_floats(Tensor::cat(flat.0, 0)).await.map_err(js_error)?;
    let mut refill = Refill { values, at: 0, device: Device::flex() };
    let host = model.map(&mut refill);
    if refill.at != refill.values.len() {
        return Err(js_error("copying the model off the GPU lost track of its parameters"));
    }
    Ok(host)
}

/// Makes a drawing (`width * height` ink values in [0, 1], row-major) into a 28x28 MNIST-style
/// image: the stroke's box scaled into 20x20 and centred by its centre of mass.
#[wasm_bindgen(js_name = prepareDrawing)]
pub fn prepare_drawing(ink: &[f32], width: u32, height: u32) -> Result<Vec<f32>, JsError> {
    mnist_style(ink, width as usize, height as usize).map_err(js_error)
}
