//! Dense and convolutional MNIST autoencoders in Burn, trained in a browser tab on WebGPU or
//! natively from the command line.
//!
//! The same library serves both: [`web`] is the page's typed boundary (wasm32 only), and
//! `src/main.rs` is the native command line. From the data to the page:

// MNIST: IDX files and the page's chunks -> image sets -> batches, and each epoch's order.
pub mod data;
// The two autoencoders (burn modules, each with its CPU form) and the enum that picks one.
pub mod model;
// The flat parameter layout: a model's parameters and gradients as one run of numbers.
pub mod params;
// The training config, the trainer and its optimizer, and the loss.
pub mod train;
// Training on the CPU in wasm: the hand-written step, its flat Adam and fused loss.
pub mod cpu_step;
// The dense model's training step in few GPU launches: CubeCL kernels on burn-wgpu's runtime.
#[cfg(feature = "webgpu")]
pub mod gpu_step;
// A model's reconstruction error and latent codes over a set of images.
pub mod evaluate;
// The model file: a header naming the model, then burn's record, checked before it is read.
pub mod model_file;
// PyTorch's state_dicts as safetensors: the study's models read in and written out.
pub mod pytorch;
// Reading digits from latent codes (k-NN, a softmax classifier) and the latent map.
pub mod predict;
// A drawing on the page made into an MNIST-style digit.
pub mod drawing;
// The one seeded generator (SplitMix64), the same natively and in the browser.
pub mod rng;

// The page's boundary: the one module that says `wasm_bindgen`.
#[cfg(target_arch = "wasm32")]
pub mod web;
