//! The conv model on the CPU: the same parameters as burn's Conv2d and ConvTranspose2d (so the
//! model file is burn's usual record), but the arithmetic done here: every layer is one matrix
//! product, with a gather of input pixels before it (convolution) or a scatter-add of its results
//! after it (transposed convolution). A feature map is a matrix `[channels, pixels*batch]`, so that
//! - each kernel is used as the matrix it already is in memory (`[c_out, c_in*kh*kw]`, or its
//!   transpose): no weight is permuted in the forward pass, and no gradient reaches Adam as a
//!   strided view, two copies that cost more per step than the convolutions' arithmetic;
//! - gathers and scatters run along the columns of a 2-D matrix with one list of positions for
//!   every channel, the fast path of burn's CPU backend, and their gradients are each other.
//!
//! At these sizes a general convolution on the CPU spends its time in layout conversion and in
//! slow weight-gradient convolutions. On a GPU the extra dispatches and scatter kernels cost more
//! than they save: measured in Chromium on SwiftShader, this form trained at 13 images/s with a
//! 36 s first step, burn's own layers at 64 images/s with a 2.5 s one, so a GPU runs burn's
//! layers (`mod.rs`). The tests check each layer against burn's own, values and gradients.
//!
//! burn's autodiff trains through this form natively; the CPU in wasm trains with the step of
//! [`crate::cpu_step`], which reads the same [`Taps`].

use std::sync::Mutex;

use burn::module::Param;
use burn::nn::conv::{Conv2d, ConvTranspose2d};
use burn::prelude::*;
use burn::tensor::IndexingUpdateOp;
use burn::tensor::activation::relu;

use super::ConvAutoencoder;
use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// The encoder on the CPU.
///
/// # Shapes
/// - images: `[batch, 28, 28]` -> code `[batch, latent]`
pub(super) fn encode(model: &ConvAutoencoder, images: Tensor<3>) -> Tensor<2> {
    let [batch, _, _] = images.dims();
    let x = images.reshape([1, batch * IMAGE_SIDE * IMAGE_SIDE]); // one channel, image-major
    let x = relu(strided_conv(&model.enc1, x, IMAGE_SIDE, batch, Columns::ImageMajor)); // [16, 14*14*batch]
    let x = relu(strided_conv(&model.enc2, x, IMAGE_SIDE / 2, batch, Columns::PixelMajor)); // [32, 7*7*batch]
    relu(full_window_conv(&model.enc3, x, batch)).transpose() // [64, batch] -> [batch, 64]
}

/// The decoder on the CPU, up to the output layer's sigmoid.
///
/// # Shapes
/// - code: `[batch, latent]` -> `[batch, 784]`
pub(super) fn decode_logits(model: &ConvAutoencoder, code: Tensor<2>) -> Tensor<2> {
    let [batch, _] = code.dims();
    let x = relu(full_window_conv_transpose(&model.dec1, code.transpose())); // [32, 7*7*batch]
    let x = relu(strided_conv_transpose(&model.dec2, x, IMAGE_SIDE / 4, batch, Columns::PixelMajor)); // [16, 14*14*batch]
    let x = strided_conv_transpose(&model.dec3, x, IMAGE_SIDE / 2, batch, Columns::ImageMajor); // [1, batch*28*28]
    x.reshape([batch, IMAGE_PIXELS])
}

/// The order of a feature map's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Columns {
    /// (image, pixel): how images come in and go out, `[batch, 28, 28]` without a copy.
    ImageMajor,
    /// (pixel, image): between layers, so that the 7x7 layers read and write a plain
    /// `[channels*pixels, batch]` matrix.
    PixelMajor,
}

impl Columns {
    fn of(self, pixel: usize, image: usize, pixels: usize, batch: usize) -> usize {
        match self {
            Columns::ImageMajor => image * pixels + pixel,
            Columns::PixelMajor => pixel * batch + image,
        }
    }
}

/// For each 3x3 tap (ky, kx), each pixel (y, x) of a `side`x`side` map and each image: the column
/// of the `other_side`x`other_side` map that `other(y, x, ky, kx)` names, laid out as `columns`
/// says, or, where the tap falls off that map, the one column after its last (a zero column to
/// gather from, a spare one to scatter into). Ordered (tap, pixel, image), so that a
/// `[channels, 9*pixels*batch]` matrix of them is `[channels*9, pixels*batch]` with rows in the
/// kernel's own (channel, ky, kx) order.
fn tap_columns(
    side: usize,
    other_side: usize,
    batch: usize,
    columns: Columns,
    other: impl Fn(usize, usize, usize, usize) -> Option<(usize, usize)>,
) -> Vec<i64> {
    let outside = (other_side * other_side * batch) as i64;
    let mut idx = Vec::with_capacity(9 * side * side * batch);
    for (ky, kx) in (0..3).flat_map(|ky| (0..3).map(move |kx| (ky, kx))) {
        for (y, x) in (0..side).flat_map(|y| (0..side).map(move |x| (y, x))) {
            let pixel = other(y, x, ky, kx)
                .filter(|&(oy, ox)| oy < other_side && ox < other_side)
                .map(|(oy, ox)| oy * other_side + ox);
            for image in 0..batch {
                idx.push(pixel.map_or(outside, |p| columns.of(p, image, other_side * other_side, batch) as i64));
            }
        }
    }
    idx
}

/// Which list of tap columns: the layer's direction, its sides, the batch and the column order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taps {
    /// A convolution's gather, `side` -> `side / 2`.
    Gather { side: usize, batch: usize, columns: Columns },
    /// A transposed convolution's scatter, `side` -> `2 * side`.
    Scatter { side: usize, batch: usize, columns: Columns },
}

impl Taps {
    pub(crate) fn columns(self) -> Vec<i64> {
        // Output (oy, ox) of a convolution reads input (2*oy - 1 + ky, 2*ox - 1 + kx); input
        // (iy, ix) of a transposed convolution writes output (2*iy - 1 + ky, 2*ix - 1 + kx).
        let two_times_minus_one = |a: usize, k: usize| (2 * a + k).checked_sub(1);
        let tap = |y, x, ky, kx| Some((two_times_minus_one(y, ky)?, two_times_minus_one(x, kx)?));
        match self {
            Taps::Gather { side, batch, columns } => tap_columns(side / 2, side, batch, columns, tap),
            Taps::Scatter { side, batch, columns } => tap_columns(side, 2 * side, batch, columns, tap),
        }
    }

    /// The list as an index tensor on `device`. Made once per layer, batch size and device: the
    /// lists are the same every step, and rebuilding them cost a few percent of a step.
    fn on(self, device: &Device) -> Tensor<1, Int> {
        static MADE: Mutex<Vec<(Taps, Device, Tensor<1, Int>)>> = Mutex::new(Vec::new());
        let mut made = MADE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((.., idx)) = made.iter().find(|(taps, on, _)| *taps == self && on == device) {
            return idx.clone();
        }
        // A handful of batch sizes occur in a run (training, its last batch, evaluation); a bound
        // keeps a long session that tries many from holding every list.
        if made.len() >= 64 {
            made.clear();
        }
        let columns = self.columns();
        let n = columns.len();
        let idx = Tensor::<1, Int>::from_ints(TensorData::new(columns, [n]), device);
        made.push((self, device.clone(), idx.clone()));
        idx
    }
}

/// `y + bias` per channel (row).
fn add_bias(y: Tensor<2>, bias: &Option<Param<Tensor<1>>>) -> Tensor<2> {
    match bias {
        Some(bias) => y + bias.val().unsqueeze_dim(1),
        None => y,
    }
}

/// The seed's 3x3, stride-2, padding-1 convolution, halving the side: a gather of each output
/// pixel's 9 taps, then one matrix product with the kernel.
///
/// # Shapes
/// - x: `[c_in, side*side*batch]`, columns as `columns` says
/// - returns `[c_out, (side/2)*(side/2)*batch]`, pixel-major
fn strided_conv(conv: &Conv2d, x: Tensor<2>, side: usize, batch: usize, columns: Columns) -> Tensor<2> {
    let [c_in, _] = x.dims();
    let out_side = side / 2;
    let device = x.device();
    // Taps in the padding read a zero column appended after the map's last.
    let idx = Taps::Gather { side, batch, columns }.on(&device);
    let x = Tensor::cat(vec![x, Tensor::zeros([c_in, 1], &device)], 1);
    let taps = x.select(1, idx).reshape([c_in * 9, out_side * out_side * batch]);
    let [c_out, ..] = conv.weight.dims();
    let weight = conv.weight.val().reshape([c_out, c_in * 9]); // columns ordered (c_in, ky, kx)
    add_bias(weight.matmul(taps), &conv.bias)
}

/// The seed's 3x3, stride-2, padding-1, output-padding-1 transposed convolution, doubling the
/// side: input (iy, ix) sends its kernel-weighted channels through tap (ky, kx) to output
/// (2*iy - 1 + ky, 2*ix - 1 + kx). Computed as one matrix product (every input pixel times the
/// whole kernel) and one scatter-add of the 9 results per pixel, the adjoint of the gather above:
/// gathering per output pixel would multiply mostly padding zeros.
///
/// # Shapes
/// - x: `[c_in, side*side*batch]`, pixel-major
/// - returns `[c_out, (2*side)*(2*side)*batch]`, columns as `columns` says
fn strided_conv_transpose(conv: &ConvTranspose2d, x: Tensor<2>, side: usize, batch: usize, columns: Columns) -> Tensor<2> {
    let [c_in, c_out, _, _] = conv.weight.dims();
    let out_side = 2 * side;
    let out_columns = out_side * out_side * batch;
    let device = x.device();
    let weight = conv.weight.val().reshape([c_in, c_out * 9]).transpose(); // rows ordered (c_out, ky, kx)
    let contributions = weight.matmul(x).reshape([c_out, 9 * side * side * batch]); // columns (tap, pixel, image)
    // Where each (tap, input pixel, image) lands; taps that fall off the output go to a spare
    // column, dropped below.
    let targets = Taps::Scatter { side, batch, columns }.on(&device);
    let y = Tensor::<2>::zeros([c_out, out_columns + 1], &device).select_assign(1, targets, contributions, IndexingUpdateOp::Add);
    add_bias(y.slice(s![.., 0..out_columns]), &conv.bias)
}

/// The 7x7 convolution over a 7x7 map: its window covers the whole input, so it is exactly a
/// matrix product with the kernel.
///
/// # Shapes
/// - x: `[c_in, 7*7*batch]`, pixel-major -> `[c_out, batch]`
fn full_window_conv(conv: &Conv2d, x: Tensor<2>, batch: usize) -> Tensor<2> {
    let [c_out, c_in, kh, kw] = conv.weight.dims();
    let x = x.reshape([c_in * kh * kw, batch]); // rows ordered (c_in, y, x)
    add_bias(conv.weight.val().reshape([c_out, c_in * kh * kw]).matmul(x), &conv.bias)
}

/// The 7x7 transposed convolution of a 1x1 map: each code number scales one whole kernel, so it
/// is exactly a matrix product with the kernel.
///
/// # Shapes
/// - code: `[c_in, batch]` -> `[c_out, 7*7*batch]`, pixel-major
fn full_window_conv_transpose(conv: &ConvTranspose2d, code: Tensor<2>) -> Tensor<2> {
    let [_, batch] = code.dims();
    let [c_in, c_out, kh, kw] = conv.weight.dims();
    let weight = conv.weight.val().reshape([c_in, c_out * kh * kw]).transpose(); // rows ordered (c_out, y, x)
    add_bias(weight.matmul(code).reshape([c_out, kh * kw * batch]), &conv.bias)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ConvAutoencoderConfig;
    use burn::tensor::Distribution;
    use burn::tensor::activation::sigmoid;

    fn model(device: &Device) -> ConvAutoencoder {
        ConvAutoencoderConfig::new().init(device)
    }

    /// `[batch, c, h, w]` (burn's layout) -> `[c, h*w*batch]` (the layout used here).
    fn as_columns(x: Tensor<4>, columns: Columns) -> Tensor<2> {
        let [b, c, h, w] = x.dims();
        match columns {
            Columns::PixelMajor => x.permute([1, 2, 3, 0]).reshape([c, h * w * b]),
            Columns::ImageMajor => x.permute([1, 0, 2, 3]).reshape([c, b * h * w]),
        }
    }

    fn close<const D: usize>(a: Tensor<D>, b: Tensor<D>) {
        assert_eq!(a.dims(), b.dims());
        let (a, b) = (a.into_data().try_into_vec::<f32>().unwrap(), b.into_data().try_into_vec::<f32>().unwrap());
        let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
        // Relative to the values' size above 1: gradients summed over many pixels grow large.
        let scale = b.iter().fold(1f32, |m, v| m.max(v.abs()));
        assert!(worst < 1e-4 * scale, "largest difference {worst} (largest value {scale})");
    }

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    #[test]
    fn every_stage_has_the_seed_shape() {
        let device = Device::flex();
        let m = model(&device);
        let x = random::<2>([1, 2 * 28 * 28], &device);
        let x = strided_conv(&m.enc1, x, 28, 2, Columns::ImageMajor);
        assert_eq!(x.dims(), [16, 14 * 14 * 2]);
        let x = strided_conv(&m.enc2, x, 14, 2, Columns::PixelMajor);
        assert_eq!(x.dims(), [32, 7 * 7 * 2]);
        let code = full_window_conv(&m.enc3, x, 2);
        assert_eq!(code.dims(), [64, 2]);
        let x = full_window_conv_transpose(&m.dec1, code);
        assert_eq!(x.dims(), [32, 7 * 7 * 2]);
        let x = strided_conv_transpose(&m.dec2, x, 7, 2, Columns::PixelMajor);
        assert_eq!(x.dims(), [16, 14 * 14 * 2]);
        assert_eq!(strided_conv_transpose(&m.dec3, x, 14, 2, Columns::ImageMajor).dims(), [1, 2 * 28 * 28]);
    }

    #[test]
    fn strided_layers_equal_burns_convolutions() {
        let device = Device::flex();
        let m = model(&device);
        for columns in [Columns::ImageMajor, Columns::PixelMajor] {
            let x = random([3, 1, 28, 28], &device);
            let ours = strided_conv(&m.enc1, as_columns(x.clone(), columns), 28, 3, columns);
            close(ours, as_columns(m.enc1.forward(x), Columns::PixelMajor));
            let x = random([3, 16, 14, 14], &device);
            let ours = strided_conv_transpose(&m.dec3, as_columns(x.clone(), Columns::PixelMajor), 14, 3, columns);
            close(ours, as_columns(m.dec3.forward(x), columns));
        }
        let x = random([3, 16, 14, 14], &device);
        let ours = strided_conv(&m.enc2, as_columns(x.clone(), Columns::PixelMajor), 14, 3, Columns::PixelMajor);
        close(ours, as_columns(m.enc2.forward(x), Columns::PixelMajor));
        let x = random([3, 32, 7, 7], &device);
        let ours = strided_conv_transpose(&m.dec2, as_columns(x.clone(), Columns::PixelMajor), 7, 3, Columns::PixelMajor);
        close(ours, as_columns(m.dec2.forward(x), Columns::PixelMajor));
    }

    #[test]
    fn full_window_products_equal_burns_convolutions() {
        let device = Device::flex();
        let m = model(&device);
        let x = random([3, 32, 7, 7], &device);
        let as_conv = m.enc3.forward(x.clone()).reshape([3, 64]).transpose();
        close(full_window_conv(&m.enc3, as_columns(x, Columns::PixelMajor), 3), as_conv);

        let code = random([3, 64], &device);
        let as_conv = m.dec1.forward(code.clone().reshape([3, 64, 1, 1]));
        close(full_window_conv_transpose(&m.dec1, code.transpose()), as_columns(as_conv, Columns::PixelMajor));
    }

    /// The whole model on the CPU path against burn's layers (the GPU path), forward and the
    /// gradient of every kernel and bias.
    #[test]
    fn the_cpu_path_has_the_values_and_gradients_of_burns_layers() {
        let device = Device::flex().autodiff();
        let m = model(&device);
        let images = Tensor::<3>::random([3, 28, 28], Distribution::Uniform(0.0, 1.0), &device);

        let ours = m.forward(images.clone());
        let theirs = {
            let x = images.reshape([3, 1, 28, 28]);
            let x = relu(m.enc1.forward(x));
            let x = relu(m.enc2.forward(x));
            let code = relu(m.enc3.forward(x));
            let x = relu(m.dec1.forward(code));
            let x = relu(m.dec2.forward(x));
            sigmoid(m.dec3.forward(x)).reshape([3, 28, 28])
        };
        close(ours.clone(), theirs.clone());

        let target = Tensor::<3>::random([3, 28, 28], Distribution::Uniform(0.0, 1.0), &device);
        let ours = (ours - target.clone()).powi_scalar(2).sum().backward();
        let theirs = (theirs - target).powi_scalar(2).sum().backward();
        for conv in [&m.enc1, &m.enc2, &m.enc3] {
            close(conv.weight.grad(&ours).unwrap(), conv.weight.grad(&theirs).unwrap());
            close(conv.bias.as_ref().unwrap().grad(&ours).unwrap(), conv.bias.as_ref().unwrap().grad(&theirs).unwrap());
        }
        for conv in [&m.dec1, &m.dec2, &m.dec3] {
            close(conv.weight.grad(&ours).unwrap(), conv.weight.grad(&theirs).unwrap());
            close(conv.bias.as_ref().unwrap().grad(&ours).unwrap(), conv.bias.as_ref().unwrap().grad(&theirs).unwrap());
        }
    }
}
