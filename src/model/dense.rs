//! The fully connected autoencoder of the seed: 784-128-64-12-3, mirrored, sigmoid out.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// Layer widths of the dense autoencoder's encoder; the decoder mirrors them.
#[derive(Config, Debug)]
pub struct DenseAutoencoderConfig {
    /// Hidden widths between the 784 pixels and the code, as in the seed.
    #[config(default = "[128, 64, 12]")]
    pub hidden: [usize; 3],
    /// Size of the latent code (the seed's bottleneck holds 3 numbers).
    #[config(default = 3)]
    pub latent: usize,
}

/// Encoder Linear 784-128-64-12-3 with ReLU between; decoder 3-12-64-128-784 with ReLU between
/// and a sigmoid at the end, so reconstructions are pixels in [0, 1].
#[derive(Module, Debug)]
pub struct DenseAutoencoder {
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
}

impl DenseAutoencoderConfig {
    pub fn init(&self, device: &Device) -> DenseAutoencoder {
        let [h1, h2, h3] = self.hidden;
        let widths = [IMAGE_PIXELS, h1, h2, h3, self.latent];
        let encoder = widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect();
        let decoder = widths.windows(2).rev().map(|w| LinearConfig::new(w[1], w[0]).init(device)).collect();
        DenseAutoencoder { encoder, decoder }
    }
}

impl DenseAutoencoder {
    /// # Shapes
    /// - images: `[batch, 28, 28]` -> code `[batch, latent]`
    pub fn encode(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, _, _] = images.dims();
        let x = images.reshape([batch, IMAGE_PIXELS]); // [batch, 784]
        through(&self.encoder, x) // [batch, latent]
    }

    /// # Shapes
    /// - code: `[batch, latent]` -> images `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        let [batch, _] = code.dims();
        sigmoid(through(&self.decoder, code)).reshape([batch, IMAGE_SIDE, IMAGE_SIDE])
    }

    /// # Shapes
    /// - images: `[batch, 28, 28]` -> reconstructions `[batch, 28, 28]`
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        self.decode(self.encode(images))
    }

    pub fn latent_size(&self) -> usize {
        self.encoder.last().map(|l| l.weight.dims()[1]).unwrap_or(0)
    }
}

/// Linear layers with ReLU between them, none after the last: the code and the pre-sigmoid
/// output are left unclipped.
fn through(layers: &[Linear], mut x: Tensor<2>) -> Tensor<2> {
    for (i, layer) in layers.iter().enumerate() {
        x = layer.forward(x);
        if i + 1 < layers.len() {
            x = relu(x);
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stage_has_the_seed_width() {
        let m = DenseAutoencoderConfig::new().init(&Device::flex());
        let widths = |layers: &[Linear]| layers.iter().map(|l| l.weight.dims()).collect::<Vec<_>>();
        assert_eq!(widths(&m.encoder), [[784, 128], [128, 64], [64, 12], [12, 3]]);
        assert_eq!(widths(&m.decoder), [[3, 12], [12, 64], [64, 128], [128, 784]]);
    }
}
