//! The two autoencoders and the closed enum that picks one.

mod conv;
mod dense;

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;

pub use conv::{ConvAutoencoder, ConvAutoencoderConfig};
pub(crate) use conv::{Columns, Taps};
pub use dense::{DenseAutoencoder, DenseAutoencoderConfig};

/// The widest latent code any model here may have; a training run and a model file both refuse a
/// wider one. 64 times the conv model's code is far past what 784 pixels need, and a bound keeps
/// a model's size one the device can hold: asking it for more memory than it has aborts the
/// process (or the page's wasm) instead of returning an error.
pub const MAX_LATENT: usize = 4096;

/// What follows the layer that makes the code.
///
/// The seed's text puts a ReLU after each of the dense encoder's 4 layers, the 3-number code
/// included; this project's dense model leaves its code linear by default, because a ReLU there
/// can switch a code number off for every image (0 for all inputs, so no gradient reaches it
/// again) and with 3 numbers that often leaves the model on the mean digit. `Relu` builds the
/// dense model to the seed's letter, to show that. The conv model's 64-number code always has the
/// seed's ReLU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CodeActivation {
    /// The code layer's output as it is (the dense model's default).
    #[default]
    Linear,
    /// `max(0, x)` on the code (the seed's text; always so for the conv model).
    Relu,
}

impl CodeActivation {
    pub fn name(self) -> &'static str {
        match self {
            CodeActivation::Linear => "linear",
            CodeActivation::Relu => "relu",
        }
    }
}

impl fmt::Display for CodeActivation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CodeActivation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "linear" => Ok(CodeActivation::Linear),
            "relu" => Ok(CodeActivation::Relu),
            other => Err(format!("invalid code activation {other:?}: choose \"linear\" or \"relu\"")),
        }
    }
}

/// Whether `device` is a GPU (burn's cubecl backends: WebGPU, Vulkan, Metal...), where the models
/// pick the layer forms that suit a GPU, rather than those fastest on the CPU.
#[cfg(feature = "webgpu")]
pub(crate) fn on_gpu(device: &Device) -> bool {
    device.as_dispatch().identity().is_some()
}

/// Built without burn's wgpu backend (the page's CPU module), every device is the CPU.
#[cfg(not(feature = "webgpu"))]
pub(crate) fn on_gpu(_: &Device) -> bool {
    false
}

/// Which architecture, as named on the command line and on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    Dense,
    Conv,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [ModelKind::Dense, ModelKind::Conv];

    pub fn name(self) -> &'static str {
        match self {
            ModelKind::Dense => "dense",
            ModelKind::Conv => "conv",
        }
    }

    /// The seed's model of this kind, with its latent size unless `latent` overrides it, and
    /// this kind's default code activation.
    pub fn init(self, latent: Option<usize>, device: &Device) -> Autoencoder {
        self.init_with(latent, self.default_code_activation(), device)
            .expect("every kind can be built with its own default code activation")
    }

    /// The code activation a model of this kind gets unless told otherwise: linear for the dense
    /// model, ReLU (the only one it has) for the conv model.
    pub fn default_code_activation(self) -> CodeActivation {
        match self {
            ModelKind::Dense => CodeActivation::Linear,
            ModelKind::Conv => CodeActivation::Relu,
        }
    }

    /// Whether a model of this kind can have `code` on its code: the dense model either, the
    /// conv model only its ReLU.
    pub fn check_code_activation(self, code: CodeActivation) -> Result<(), String> {
        match (self, code) {
            (ModelKind::Conv, CodeActivation::Linear) => Err(
                "the conv model's code always has the seed's ReLU: a linear code activation is for the dense model only".into(),
            ),
            _ => Ok(()),
        }
    }

    /// [`ModelKind::init`] with the code activation named; refuses one this kind cannot have.
    pub fn init_with(self, latent: Option<usize>, code: CodeActivation, device: &Device) -> Result<Autoencoder, String> {
        self.check_code_activation(code)?;
        Ok(match self {
            ModelKind::Dense => {
                let config = DenseAutoencoderConfig::new();
                let config = config.with_latent(latent.unwrap_or(3)).with_code_activation(code);
                Autoencoder::Dense(config.init(device))
            }
            ModelKind::Conv => {
                let config = ConvAutoencoderConfig::new();
                let config = config.with_latent(latent.unwrap_or(64));
                Autoencoder::Conv(config.init(device))
            }
        })
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ModelKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "dense" => Ok(ModelKind::Dense),
            "conv" => Ok(ModelKind::Conv),
            other => Err(format!("invalid model type {other:?}: choose \"dense\" or \"conv\"")),
        }
    }
}

/// Either autoencoder, behind one interface.
#[derive(Module, Debug)]
pub enum Autoencoder {
    Dense(DenseAutoencoder),
    Conv(ConvAutoencoder),
}

impl Autoencoder {
    pub fn kind(&self) -> ModelKind {
        match self {
            Autoencoder::Dense(_) => ModelKind::Dense,
            Autoencoder::Conv(_) => ModelKind::Conv,
        }
    }

    /// `[batch, 28, 28]` -> `[batch, latent]`
    pub fn encode(&self, images: Tensor<3>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(m) => m.encode(images),
            Autoencoder::Conv(m) => m.encode(images),
        }
    }

    /// `[batch, latent]` -> `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        match self {
            Autoencoder::Dense(m) => m.decode(code),
            Autoencoder::Conv(m) => m.decode(code),
        }
    }

    /// `[batch, 28, 28]` -> the output layer before its sigmoid, `[batch, 784]`
    pub fn logits(&self, images: Tensor<3>) -> Tensor<2> {
        match self {
            Autoencoder::Dense(m) => m.decode_logits(m.encode(images)),
            Autoencoder::Conv(m) => m.decode_logits(m.encode(images)),
        }
    }

    /// `[batch, 28, 28]` -> `[batch, 28, 28]` in [0, 1]
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        match self {
            Autoencoder::Dense(m) => m.forward(images),
            Autoencoder::Conv(m) => m.forward(images),
        }
    }

    pub fn latent_size(&self) -> usize {
        match self {
            Autoencoder::Dense(m) => m.latent_size(),
            Autoencoder::Conv(m) => m.latent_size(),
        }
    }

    /// What follows the code layer (a model file's header records it; the page shows it).
    pub fn code_activation(&self) -> CodeActivation {
        match self {
            Autoencoder::Dense(m) => m.code_activation(),
            Autoencoder::Conv(_) => CodeActivation::Relu,
        }
    }
}
