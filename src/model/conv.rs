//! The convolutional autoencoder of the seed: two stride-2 3x3 convolutions and a 7x7 one down
//! to a 64-number code, mirrored with transposed convolutions, sigmoid out.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::activation::{relu, sigmoid};

use crate::data::IMAGE_SIDE;

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
        let x = images.reshape([batch, 1, IMAGE_SIDE, IMAGE_SIDE]); // [batch, 1, 28, 28]
        let x = relu(self.enc1.forward(x)); // [batch, 16, 14, 14]
        let x = relu(self.enc2.forward(x)); // [batch, 32, 7, 7]
        relu(full_window_conv(&self.enc3, x)) // [batch, 64]
    }

    /// # Shapes
    /// - code: `[batch, latent]` -> images `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        let [batch, _] = code.dims();
        let x = relu(full_window_conv_transpose(&self.dec1, code)); // [batch, 32, 7, 7]
        let x = relu(self.dec2.forward(x)); // [batch, 16, 14, 14]
        let x = sigmoid(self.dec3.forward(x)); // [batch, 1, 28, 28]
        x.reshape([batch, IMAGE_SIDE, IMAGE_SIDE])
    }

    /// # Shapes
    /// - images: `[batch, 28, 28]` -> reconstructions `[batch, 28, 28]`
    pub fn forward(&self, images: Tensor<3>) -> Tensor<3> {
        self.decode(self.encode(images))
    }

    pub fn latent_size(&self) -> usize {
        self.enc3.weight.dims()[0]
    }
}

/// The 7x7 convolution over a 7x7 map: its window covers the whole input, so it is exactly a
/// matrix product with the flattened kernel. Written so, it runs as one GEMM forward and two
/// backward instead of a general convolution and its transposed-convolution gradients.
///
/// # Shapes
/// - x: `[batch, c_in, 7, 7]` -> `[batch, c_out]`
fn full_window_conv(conv: &Conv2d, x: Tensor<4>) -> Tensor<2> {
    let [batch, c_in, h, w] = x.dims();
    let weight = conv.weight.val(); // [c_out, c_in, 7, 7]
    let [c_out, _, kh, kw] = weight.dims();
    debug_assert_eq!((h, w), (kh, kw), "the kernel must cover the whole input");
    let y = x.reshape([batch, c_in * h * w]).matmul(weight.reshape([c_out, c_in * kh * kw]).transpose());
    match &conv.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    }
}

/// The 7x7 transposed convolution of a 1x1 map: each code number scales one whole kernel, so it
/// is exactly a matrix product with the flattened kernel.
///
/// # Shapes
/// - code: `[batch, c_in]` -> `[batch, c_out, 7, 7]`
fn full_window_conv_transpose(conv: &ConvTranspose2d, code: Tensor<2>) -> Tensor<4> {
    let [batch, _] = code.dims();
    let weight = conv.weight.val(); // [c_in, c_out, 7, 7]
    let [c_in, c_out, kh, kw] = weight.dims();
    let y = code.matmul(weight.reshape([c_in, c_out * kh * kw])).reshape([batch, c_out, kh, kw]);
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, c_out, 1, 1]),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ConvAutoencoder {
        ConvAutoencoderConfig::new().init(&Device::flex())
    }

    fn close(a: Tensor<4>, b: Tensor<4>) {
        let (a, b) = (a.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap());
        assert_eq!(a.len(), b.len());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    #[test]
    fn every_stage_has_the_seed_shape() {
        let m = model();
        let device = Device::flex();
        let x = Tensor::<4>::ones([2, 1, 28, 28], &device);
        let x = m.enc1.forward(x);
        assert_eq!(x.dims(), [2, 16, 14, 14]);
        let x = m.enc2.forward(x);
        assert_eq!(x.dims(), [2, 32, 7, 7]);
        let code = full_window_conv(&m.enc3, x);
        assert_eq!(code.dims(), [2, 64]);
        let x = full_window_conv_transpose(&m.dec1, code);
        assert_eq!(x.dims(), [2, 32, 7, 7]);
        let x = m.dec2.forward(x);
        assert_eq!(x.dims(), [2, 16, 14, 14]);
        assert_eq!(m.dec3.forward(x).dims(), [2, 1, 28, 28]);
    }

    #[test]
    fn full_window_products_equal_the_convolutions_they_replace() {
        let m = model();
        let device = Device::flex();
        let x = Tensor::<4>::random([3, 32, 7, 7], burn::tensor::Distribution::Default, &device);
        let as_conv = m.enc3.forward(x.clone()); // [3, 64, 1, 1]
        close(full_window_conv(&m.enc3, x).reshape([3, 64, 1, 1]), as_conv);

        let code = Tensor::<2>::random([3, 64], burn::tensor::Distribution::Default, &device);
        let as_conv = m.dec1.forward(code.clone().reshape([3, 64, 1, 1])); // [3, 32, 7, 7]
        close(full_window_conv_transpose(&m.dec1, code), as_conv);
    }
}
