//! The convolutional autoencoder of the seed: two stride-2 3x3 convolutions and a 7x7 one down
//! to a 64-number code, mirrored with transposed convolutions, sigmoid out.
//!
//! This file is the burn module, its config and how it runs on a GPU (burn's own layers);
//! [`cpu`] is how the same parameters run on the CPU, natively and in wasm.

mod cpu;

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

pub(crate) use cpu::{Columns, Taps};
use super::on_gpu;
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// Channel widths of the convolutional autoencoder.
#[derive(Config, Debug)]
pub struct ConvAutoencoderConfig {
    /// Channels after the first and second stride-2 convolutions, as in the seed.
    #[config(default = "[16, 32]")]
    pub channels: [usize; 2],
    /// Channels of the 1x1 latent code made by the 7x7 convolution (the seed's 64).
    #[config(default = 64)]
    pub latent: usize,
}

#[derive(Module, Debug)]
pub struct ConvAutoencoder {
    enc1: Conv2d,
    enc2: Conv2d,
    enc3: Conv2d,
    dec1: ConvTranspose2d,
    dec2: ConvTranspose2d,
    dec3: ConvTranspose2d,
}

impl ConvAutoencoderConfig {
    pub fn init(&self, device: &Device) -> ConvAutoencoder {
        let [c1, c2] = self.channels;
        let down = |from, to| {
            Conv2dConfig::new([from, to], [3, 3])
                .with_stride([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(device)
        };
        // output_padding 1 makes each stride-2 transposed convolution exactly double the side
        // (7 -> 14 -> 28), undoing the encoder's halving.
        let up = |from, to| {
            ConvTranspose2dConfig::new([from, to], [3, 3])
                .with_stride([2, 2])
                .with_padding([1, 1])
                .with_padding_out([1, 1])
                .init(device)
        };
        ConvAutoencoder {
            enc1: down(1, c1),
            enc2: down(c1, c2),
            enc3: Conv2dConfig::new([c2, self.latent], [7, 7]).init(device),
            dec1: ConvTranspose2dConfig::new([self.latent, c2], [7, 7]).init(device),
            dec2: up(c2, c1),
            dec3: up(c1, 1),
        }
    }
}

impl ConvAutoencoder {
    /// # Shapes
    /// - images: `[batch, 28, 28]` -> code `[batch, latent]` (the 1x1 feature map, flattened)
    pub fn encode(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, _, _] = images.dims();
        if on_gpu(&images.device()) {
            let x = images.reshape([batch, 1, IMAGE_SIDE, IMAGE_SIDE]);
            let x = relu(self.enc1.forward(x)); // [batch, 16, 14, 14]
            let x = relu(self.enc2.forward(x)); // [batch, 32, 7, 7]
            return relu(self.enc3.forward(x)).reshape([batch, self.latent_size()]);
        }
        cpu::encode(self, images)
    }

    /// # Shapes
    /// - code: `[batch, latent]` -> images `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        let [batch, _] = code.dims();
        if on_gpu(&code.device()) {
            // The sigmoid before the reshape: burn's GPU convolutions leave their output
            // channels-last, which a reshape first would copy (a dispatch more a step).
            return sigmoid(self.gpu_logits(code)).reshape([batch, IMAGE_SIDE, IMAGE_SIDE]);
        }
        sigmoid(self.decode_logits(code)).reshape([batch, IMAGE_SIDE, IMAGE_SIDE])
    }

    /// The output layer before its sigmoid: what training's loss takes on the CPU in wasm.
    ///
    /// # Shapes
    /// - code: `[batch, latent]` -> `[batch, 784]`
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        let [batch, _] = code.dims();
        if on_gpu(&code.device()) {
            return self.gpu_logits(code).reshape([batch, IMAGE_PIXELS]);
        }
        cpu::decode_logits(self, code)
    }

    /// The GPU form's output layer before its sigmoid.
    ///
    /// # Shapes
    /// - code: `[batch, latent]` -> `[batch, 1, 28, 28]`
    fn gpu_logits(&self, code: Tensor<2>) -> Tensor<4> {
        let [batch, latent] = code.dims();
        let x = relu(self.dec1.forward(code.reshape([batch, latent, 1, 1]))); // [batch, 32, 7, 7]
        let x = relu(self.dec2.forward(x)); // [batch, 16, 14, 14]
        self.dec3.forward(x)
    }

    /// # Shapes
    /// - images: `[batch, 28, 28]` -> reconstructions `[batch, 28, 28]`
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        self.decode(self.encode(images))
    }

    pub fn latent_size(&self) -> usize {
        self.enc3.weight.dims()[0]
    }

    /// The channels after the first and second layers, and the code's: `[c1, c2, latent]`.
    pub(crate) fn channels(&self) -> [usize; 3] {
        [self.enc1.weight.dims()[0], self.enc2.weight.dims()[0], self.latent_size()]
    }
}

