//! The convolutional autoencoder of the seed: two stride-2 3x3 convolutions and a 7x7 one down
//! to a 64-number code, mirrored with transposed convolutions, sigmoid out.

use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig, ConvTranspose2d, ConvTranspose2dConfig};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::{relu, sigmoid};

use super::on_gpu;
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
        if on_gpu(&images.device()) {
            let x = images.reshape([batch, 1, IMAGE_SIDE, IMAGE_SIDE]);
            let x = relu(self.enc1.forward(x)); // [batch, 16, 14, 14]
            let x = relu(self.enc2.forward(x)); // [batch, 32, 7, 7]
            return relu(self.enc3.forward(x)).reshape([batch, self.latent_size()]);
        }
        let x = images.reshape([batch, IMAGE_SIDE * IMAGE_SIDE, 1]); // [batch, 28*28, 1] channels-last
        let x = relu(strided_conv(&self.enc1, x, IMAGE_SIDE)); // [batch, 14*14, 16]
        let x = relu(strided_conv(&self.enc2, x, IMAGE_SIDE / 2)); // [batch, 7*7, 32]
        relu(full_window_conv(&self.enc3, x)) // [batch, 64]
    }

    /// # Shapes
    /// - code: `[batch, latent]` -> images `[batch, 28, 28]` in [0, 1]
    pub fn decode(&self, code: Tensor<2>) -> Tensor<3> {
        let [batch, latent] = code.dims();
        if on_gpu(&code.device()) {
            let x = relu(self.dec1.forward(code.reshape([batch, latent, 1, 1]))); // [batch, 32, 7, 7]
            let x = relu(self.dec2.forward(x)); // [batch, 16, 14, 14]
            return sigmoid(self.dec3.forward(x)).reshape([batch, IMAGE_SIDE, IMAGE_SIDE]);
        }
        let x = relu(full_window_conv_transpose(&self.dec1, code)); // [batch, 7*7, 32]
        let x = relu(strided_conv_transpose(&self.dec2, x, IMAGE_SIDE / 4)); // [batch, 14*14, 16]
        let x = sigmoid(strided_conv_transpose(&self.dec3, x, IMAGE_SIDE / 2)); // [batch, 28*28, 1]
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

// How the layers run on the CPU. The parameters are burn's Conv2d and ConvTranspose2d (so the
// model file is burn's usual record), but the arithmetic is done here, channels-last
// (`[batch, h*w, channels]`), as one gather of input pixels followed by one matrix product per
// layer. At these sizes a general convolution on the CPU spends its time in layout conversion and
// in slow weight-gradient convolutions; a gather and a GEMM have cheap, exact gradients (a
// scatter-add and two GEMMs). On a GPU the extra dispatches and scatter kernels cost more than
// they save: measured in Chromium on SwiftShader, this form trained at 13 images/s with a 36 s
// first step, burn's own layers at 64 images/s with a 2.5 s one, so a GPU runs burn's layers.
// Tests below check each against burn's own layer.

/// For each pixel (y, x) of a `side`x`side` map and each of the 3x3 taps, the pixel of the other
/// map that `other(y, x, ky, kx)` names, row-major over (pixel, tap); `outside` where it names
/// none (the tap falls in the padding).
fn tap_indices(side: usize, outside: usize, other: impl Fn(usize, usize, usize, usize) -> Option<usize>) -> Vec<i32> {
    let mut idx = Vec::with_capacity(side * side * 9);
    for y in 0..side {
        for x in 0..side {
            for ky in 0..3 {
                for kx in 0..3 {
                    idx.push(other(y, x, ky, kx).unwrap_or(outside) as i32);
                }
            }
        }
    }
    idx
}

/// Gathers the 9 taps of every output pixel and multiplies by the flattened kernel.
///
/// # Shapes
/// - x: `[batch, in_side*in_side, c_in]`, idx: `out_pixels * 9`, weight: `[9 * c_in, c_out]`
/// - returns `[batch, out_pixels, c_out]`
fn gather_matmul(x: Tensor<3>, idx: Vec<i32>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<3> {
    let [batch, pixels, c_in] = x.dims();
    let [_, c_out] = weight.dims();
    let out_pixels = idx.len() / 9;
    let device = x.device();
    debug_assert!(idx.iter().all(|&i| (i as usize) <= pixels));
    // A row of zeros after each image's last pixel is what taps in the padding read.
    let x = Tensor::cat(vec![x, Tensor::zeros([batch, 1, c_in], &device)], 1); // [batch, pixels+1, c_in]
    // Gather whole rows of a 2-D [batch*(pixels+1), c_in] view: the row-wise gather and its
    // scatter-add gradient are the fast paths of every backend. Row indices for all images are
    // made on the device from the one image's taps.
    let rows = x.reshape([batch * (pixels + 1), c_in]);
    let idx = per_image_rows(idx, batch, pixels + 1, &device);
    let columns = rows.select(0, idx).reshape([batch * out_pixels, 9 * c_in]); // [batch*out_pixels, 9*c_in]
    let y = columns.matmul(weight); // [batch*out_pixels, c_out]
    let y = match bias {
        Some(bias) => y + bias.unsqueeze_dim(0),
        None => y,
    };
    y.reshape([batch, out_pixels, c_out])
}

/// One image's row indices repeated for each image of the batch, offset by `rows_per_image`; made
/// on the device so only one image's indices are uploaded.
fn per_image_rows(idx: Vec<i32>, batch: usize, rows_per_image: usize, device: &Device) -> Tensor<1, Int> {
    let n = idx.len();
    let idx = Tensor::<1, Int>::from_ints(TensorData::new(idx, [n]), device);
    let image_start = Tensor::<1, Int>::arange(0..batch as i64, device).mul_scalar(rows_per_image as i64);
    (image_start.unsqueeze_dim::<2>(1) + idx.unsqueeze_dim(0)).reshape([batch * n])
}

/// The seed's 3x3, stride-2, padding-1 convolution, halving the side.
///
/// # Shapes
/// - x: `[batch, side*side, c_in]` -> `[batch, (side/2)*(side/2), c_out]`
fn strided_conv(conv: &Conv2d, x: Tensor<3>, side: usize) -> Tensor<3> {
    let out_side = side / 2;
    // Output (oy, ox) reads input (2*oy - 1 + ky, 2*ox - 1 + kx).
    let idx = tap_indices(out_side, side * side, |oy, ox, ky, kx| {
        let (iy, ix) = ((2 * oy + ky).checked_sub(1)?, (2 * ox + kx).checked_sub(1)?);
        (iy < side && ix < side).then_some(iy * side + ix)
    });
    let weight = conv.weight.val(); // [c_out, c_in, 3, 3]
    let [c_out, c_in, _, _] = weight.dims();
    let weight = weight.permute([2, 3, 1, 0]).reshape([9 * c_in, c_out]); // rows ordered (ky, kx, c_in)
    gather_matmul(x, idx, weight, conv.bias.as_ref().map(|b| b.val()))
}

/// The seed's 3x3, stride-2, padding-1, output-padding-1 transposed convolution, doubling the
/// side: input (iy, ix) sends its kernel-weighted channels through tap (ky, kx) to output
/// (2*iy - 1 + ky, 2*ix - 1 + kx). Computed as one matrix product (every input pixel times the
/// whole kernel) and one scatter-add of the 9 results per pixel, the adjoint of the gather above:
/// gathering per output pixel would multiply mostly padding zeros.
///
/// # Shapes
/// - x: `[batch, side*side, c_in]` -> `[batch, (2*side)*(2*side), c_out]`
fn strided_conv_transpose(conv: &ConvTranspose2d, x: Tensor<3>, side: usize) -> Tensor<3> {
    let [batch, pixels, c_in] = x.dims();
    let out_side = 2 * side;
    let out_pixels = out_side * out_side;
    let device = x.device();
    let weight = conv.weight.val(); // [c_in, c_out, 3, 3]
    let [_, c_out, _, _] = weight.dims();
    let weight = weight.permute([0, 2, 3, 1]).reshape([c_in, 9 * c_out]); // columns ordered (ky, kx, c_out)
    let contributions = x.reshape([batch * pixels, c_in]).matmul(weight).reshape([batch * pixels * 9, c_out]);

    // Where each (input pixel, tap) lands; taps that fall off the output go to a spare row per
    // image, dropped below.
    let targets = tap_indices(side, out_pixels, |iy, ix, ky, kx| {
        let (oy, ox) = ((2 * iy + ky).checked_sub(1)?, (2 * ix + kx).checked_sub(1)?);
        (oy < out_side && ox < out_side).then_some(oy * out_side + ox)
    });
    let rows = per_image_rows(targets, batch, out_pixels + 1, &device);
    let y = Tensor::<2>::zeros([batch * (out_pixels + 1), c_out], &device).select_assign(
        0,
        rows,
        contributions,
        IndexingUpdateOp::Add,
    );
    let y = y.reshape([batch, out_pixels + 1, c_out]).slice(s![.., 0..out_pixels, ..]);
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, 1, c_out]),
        None => y,
    }
}

/// The 7x7 convolution over a 7x7 map: its window covers the whole input, so it is exactly a
/// matrix product with the flattened kernel.
///
/// # Shapes
/// - x: `[batch, 7*7, c_in]` -> `[batch, c_out]`
fn full_window_conv(conv: &Conv2d, x: Tensor<3>) -> Tensor<2> {
    let [batch, pixels, c_in] = x.dims();
    let weight = conv.weight.val(); // [c_out, c_in, 7, 7]
    let [c_out, _, kh, kw] = weight.dims();
    debug_assert_eq!(pixels, kh * kw, "the kernel must cover the whole input");
    let weight = weight.permute([2, 3, 1, 0]).reshape([pixels * c_in, c_out]); // rows ordered (y, x, c_in)
    let y = x.reshape([batch, pixels * c_in]).matmul(weight);
    match &conv.bias {
        Some(bias) => y + bias.val().unsqueeze_dim(0),
        None => y,
    }
}

/// The 7x7 transposed convolution of a 1x1 map: each code number scales one whole kernel, so it
/// is exactly a matrix product with the flattened kernel.
///
/// # Shapes
/// - code: `[batch, c_in]` -> `[batch, 7*7, c_out]`
fn full_window_conv_transpose(conv: &ConvTranspose2d, code: Tensor<2>) -> Tensor<3> {
    let [batch, _] = code.dims();
    let weight = conv.weight.val(); // [c_in, c_out, 7, 7]
    let [c_in, c_out, kh, kw] = weight.dims();
    let weight = weight.permute([0, 2, 3, 1]).reshape([c_in, kh * kw * c_out]); // columns ordered (y, x, c_out)
    let y = code.matmul(weight).reshape([batch, kh * kw, c_out]);
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, 1, c_out]),
        None => y,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    fn model() -> ConvAutoencoder {
        ConvAutoencoderConfig::new().init(&Device::flex())
    }

    /// `[batch, c, h, w]` (burn's layout) -> `[batch, h*w, c]` (the layout used here).
    fn channels_last(x: Tensor<4>) -> Tensor<3> {
        let [b, c, h, w] = x.dims();
        x.permute([0, 2, 3, 1]).reshape([b, h * w, c])
    }

    fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        assert!(worst < 1e-4, "largest difference {worst}");
    }

    fn random<const D: usize>(shape: [usize; D]) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), &Device::flex())
    }

    #[test]
    fn every_stage_has_the_seed_shape() {
        let m = model();
        let x = random::<3>([2, 28 * 28, 1]);
        let x = strided_conv(&m.enc1, x, 28);
        assert_eq!(x.dims(), [2, 14 * 14, 16]);
        let x = strided_conv(&m.enc2, x, 14);
        assert_eq!(x.dims(), [2, 7 * 7, 32]);
        let code = full_window_conv(&m.enc3, x);
        assert_eq!(code.dims(), [2, 64]);
        let x = full_window_conv_transpose(&m.dec1, code);
        assert_eq!(x.dims(), [2, 7 * 7, 32]);
        let x = strided_conv_transpose(&m.dec2, x, 7);
        assert_eq!(x.dims(), [2, 14 * 14, 16]);
        assert_eq!(strided_conv_transpose(&m.dec3, x, 14).dims(), [2, 28 * 28, 1]);
    }

    #[test]
    fn strided_layers_equal_burns_convolutions() {
        let m = model();
        let x = random([3, 16, 14, 14]);
        close(strided_conv(&m.enc2, channels_last(x.clone()), 14), channels_last(m.enc2.forward(x)));
        let x = random([3, 1, 28, 28]);
        close(strided_conv(&m.enc1, channels_last(x.clone()), 28), channels_last(m.enc1.forward(x)));
        let x = random([3, 32, 7, 7]);
        close(strided_conv_transpose(&m.dec2, channels_last(x.clone()), 7), channels_last(m.dec2.forward(x)));
        let x = random([3, 16, 14, 14]);
        close(strided_conv_transpose(&m.dec3, channels_last(x.clone()), 14), channels_last(m.dec3.forward(x)));
    }

    #[test]
    fn full_window_products_equal_burns_convolutions() {
        let m = model();
        let x = random([3, 32, 7, 7]);
        let as_conv = m.enc3.forward(x.clone()).reshape([3, 64]);
        close(full_window_conv(&m.enc3, channels_last(x)), as_conv);

        let code = random([3, 64]);
        let as_conv = m.dec1.forward(code.clone().reshape([3, 64, 1, 1]));
        close(full_window_conv_transpose(&m.dec1, code), channels_last(as_conv));
    }

    #[test]
    fn gradients_equal_those_of_burns_convolutions() {
        let device = Device::flex().autodiff();
        let m = ConvAutoencoderConfig::new().init(&device);
        let x = Tensor::<4>::random([2, 16, 14, 14], Distribution::Normal(0.0, 1.0), &device);
        let ours = strided_conv(&m.enc2, channels_last(x.clone()), 14).powi_scalar(2).sum();
        let grads = ours.backward();
        let ours = m.enc2.weight.grad(&grads).unwrap();
        let theirs = channels_last(m.enc2.forward(x)).powi_scalar(2).sum();
        let grads = theirs.backward();
        let theirs = m.enc2.weight.grad(&grads).unwrap();
        close(ours, theirs);
    }
}
