//! The two autoencoders and the closed enum that picks one.

mod conv;
mod dense;

use std::fmt;
use std::str::FromStr;

use burn::prelude::*;

pub use conv::{ConvAutoencoder, ConvAutoencoderConfig};
pub use dense::{DenseAutoencoder, DenseAutoencoderConfig};

/// Whether `device` is a GPU (burn's cubecl backends: WebGPU, Vulkan, Metal...), where the models
/// pick the layer forms that suit a GPU, rather than those fastest on the CPU.
pub(crate) fn on_gpu(device: &Device) -> bool {
    device.as_dispatch().identity().is_some()
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

    /// The seed's model of this kind, with its latent size unless `latent` overrides it.
    pub fn init(self, latent: Option<usize>, device: &Device) -> Autoencoder {
        match self {
            ModelKind::Dense => {
                let config = DenseAutoencoderConfig::new();
                let config = config.with_latent(latent.unwrap_or(3));
                Autoencoder::Dense(config.init(device))
            }
            ModelKind::Conv => {
                let config = ConvAutoencoderConfig::new();
                let config = config.with_latent(latent.unwrap_or(64));
                Autoencoder::Conv(config.init(device))
            }
        }
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
}
