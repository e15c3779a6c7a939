//! The fully connected autoencoder of the seed: 784-128-64-12-3, mirrored, sigmoid out.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};
use burn::tensor::module::conv_transpose2d;
use burn::tensor::ops::ConvTransposeOptions;

use super::{CodeActivation, on_gpu};
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
    /// What follows the code layer: linear by default; the seed's text has a ReLU there.
    #[config(default = "CodeActivation::Linear")]
    pub code_activation: CodeActivation,
}

/// Encoder Linear 784-128-64-12-3 with ReLU between (and after the last, with a ReLU code);
/// decoder 3-12-64-128-784 with ReLU between and a sigmoid at the end, so reconstructions are
/// pixels in [0, 1].
#[derive(Module, Debug)]
pub struct DenseAutoencoder {
    encoder: Vec<Linear>,
    decoder: Vec<Linear>,
    /// Not a parameter: kept out of burn's record (a model file's header says it instead), so
    /// files written before this setting existed load unchanged.
    #[module(skip)]
    code_activation: CodeActivation,
}

impl DenseAutoencoderConfig {
    pub fn init(&self, device: &Device) -> DenseAutoencoder {
        // A hidden layer narrower than the code would be the real bottleneck: widen it to the
        // code's size, so that a dense model with a 64-number code really keeps 64 numbers.
        let [h1, h2, h3] = self.hidden.map(|h| h.max(self.latent));
        let widths = [IMAGE_PIXELS, h1, h2, h3, self.latent];
        let encoder = widths.windows(2).map(|w| LinearConfig::new(w[0], w[1]).init(device)).collect();
        let decoder = widths.windows(2).rev().map(|w| LinearConfig::new(w[1], w[0]).init(device)).collect();
        DenseAutoencoder { encoder, decoder, code_activation: self.code_activation }
    }
}

impl DenseAutoencoder {
    /// # Shapes
    /// - images: `[batch, 28, 28]` -> code `[batch, latent]`
    pub fn encode(&self, images: Tensor<3>) -> Tensor<2> {
        let [batch, _, _] = images.dims();
        let x = images.reshape([batch, IMAGE_PIXELS]); // [batch, 784]
        let code = through(&self.encoder, x); // [batch, latent]
        match self.code_activation {
            CodeActivation::Linear => code,
            CodeActivation::Relu => relu(code),
        }
    }

    /// # Shapes
    /// - code: `[batch, latent]` -> images `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        let [batch, _] = code.dims();
        sigmoid(self.decode_logits(code)).reshape([batch, IMAGE_SIDE, IMAGE_SIDE])
    }

    /// The last layer's output before its sigmoid: what training's loss takes on the CPU in wasm.
    ///
    /// # Shapes
    /// - code: `[batch, latent]` -> `[batch, 784]`
    pub fn decode_logits(&self, code: Tensor<2>) -> Tensor<2> {
        through(&self.decoder, code)
    }

    /// # Shapes
    /// - images: `[batch, 28, 28]` -> reconstructions `[batch, 28, 28]`
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        self.decode(self.encode(images))
    }

    pub fn latent_size(&self) -> usize {
        self.encoder.last().map(|l| l.weight.dims()[1]).unwrap_or(0)
    }

    /// The encoder's widths, input first: `[784, h1, h2, h3, latent]` (the decoder mirrors them).
    pub(crate) fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.encoder.iter().map(|l| l.weight.dims()[0]).collect();
        widths.extend(self.encoder.last().map(|l| l.weight.dims()[1]));
        widths
    }

    pub fn code_activation(&self) -> CodeActivation {
        self.code_activation
    }
}

/// Linear layers with ReLU between them, none after the last: the pre-sigmoid output is left
/// unclipped, and the code's activation is the caller's choice.
fn through(layers: &[Linear], mut x: Tensor<2>) -> Tensor<2> {
    let gpu = on_gpu(&x.device());
    for (i, layer) in layers.iter().enumerate() {
        x = if gpu { pointwise_linear(layer, x) } else { layer.forward(x) };
        if i + 1 < layers.len() {
            x = relu(x);
        }
    }
    x
}

/// `x W + b` as a 1x1 transposed convolution, instead of a matrix product.
///
/// On a GPU this is for compile time and memory traffic. burn's tiled matrix-product kernels
/// take long to compile, and a software WebGPU adapter (SwiftShader) compiles each for seconds:
/// in headless Chromium on SwiftShader, batch 32, the first training step took 31.5 s with
/// matrix products. A broadcast product summed over the inputs compiled fast but wrote a
/// `batch x inputs x outputs` temporary each way, 3.2 M numbers for the 784-128 layers. burn's
/// direct convolution kernels compile as fast and sum inside the kernel, and a transposed
/// convolution's weight is `[inputs, outputs, 1, 1]`: `Linear`'s own layout, so the weight is
/// read as it is stored. Its backward pass is a direct convolution for the input's gradient and
/// another for the weight's. On SwiftShader (`./build.sh bench-web --backends webgpu`, the two
/// forms' pages side by side, two runs each) the broadcast form took 119 compute dispatches a
/// training step and trained at 44.5 and 52.1 images/s, this one 98 and 284.7 and 336.4; the
/// first step, every kernel compiled, 1.5 and 1.4 s against 1.2 and 1.0 s.
///
/// # Shapes
/// - x: `[batch, inputs]` -> `[batch, outputs]`
fn pointwise_linear(layer: &Linear, x: Tensor<2>) -> Tensor<2> {
    let [batch, inputs] = x.dims();
    let [_, outputs] = layer.weight.dims();
    // burn's GPU convolutions work channels-last. Going through `[n, 1, 1, c]` and a permute
    // hands them tensors whose channels-last view is already dense, so neither the weight nor
    // the input is copied into that layout (a copy is a dispatch of its own).
    let nchw = |t: Tensor<2>, n, c| t.reshape([n, 1, 1, c]).permute([0, 3, 1, 2]);
    let weight = nchw(layer.weight.val(), inputs, outputs);
    let options = ConvTransposeOptions::new([1, 1], [0, 0], [0, 0], [1, 1], 1);
    let y = conv_transpose2d(nchw(x, batch, inputs), weight, None, options);
    let y = y.permute([0, 2, 3, 1]).reshape([batch, outputs]);
    // The bias is added here rather than inside the convolution: the addition fuses with the
    // activation that follows, and its gradient is then a sum over the batch of the gradient
    // as it arrives, where the convolution's own bias gradient first copies it channels-first.
    match &layer.bias {
        Some(b) => y + b.val().unsqueeze_dim(0),
        None => y,
    }
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

    #[test]
    fn no_hidden_layer_is_narrower_than_the_code() {
        let m = DenseAutoencoderConfig::new().with_latent(64).init(&Device::flex());
        let widths = |layers: &[Linear]| layers.iter().map(|l| l.weight.dims()).collect::<Vec<_>>();
        assert_eq!(widths(&m.encoder), [[784, 128], [128, 64], [64, 64], [64, 64]]);
        assert_eq!(widths(&m.decoder), [[64, 64], [64, 64], [64, 128], [128, 784]]);
    }

    #[test]
    fn pointwise_linear_matches_the_matrix_product() {
        let device = Device::flex();
        let layer = LinearConfig::new(20, 7).init(&device);
        let x = Tensor::<2>::random([5, 20], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
        let expected = layer.forward(x.clone());
        let got = pointwise_linear(&layer, x);
        let max_diff: f32 = (expected - got).abs().max().into_scalar();
        assert!(max_diff < 1e-5, "max difference {max_diff}");
    }
}
