//! The conv model's step, in the CPU form of `src/model/conv/cpu.rs`: a feature map is a matrix
//! `[channels, pixels x batch]`; the stride-2 convolutions gather their 9 taps into columns and
//! multiply, the transposed ones multiply and scatter-add the taps back; the 7x7 layers are one
//! product each. The taps are the model's own (`Taps`), so both forms read the same pixels.
//!
//! Parameters, in the model's visitor order: enc1 (`[c1, 1, 3, 3]`, bias), enc2 (`[c2, c1, 3, 3]`),
//! enc3 (`[latent, c2, 7, 7]`), dec1 (`[latent, c2, 7, 7]`, burn's transposed layout
//! `[inputs, outputs, kh, kw]`), dec2 (`[c2, c1, 3, 3]`), dec3 (`[c1, 1, 3, 3]`), each with its bias.

use super::matmul::{View, matmul, matmul_into};
use super::sigmoid_mse::sigmoid_mse;
use super::{Layer, add_row_bias, relu, relu_back, row_sums};
use crate::data::IMAGE_PIXELS;
use crate::model::{Columns, Taps};

/// Pixels of the 14x14 and 7x7 maps.
const P1: usize = 14 * 14;
const P2: usize = 7 * 7;

pub(super) struct Conv {
    c1: usize,
    c2: usize,
    latent: usize,
    /// Each layer's place in the parameters, enc1 to dec3.
    layers: [Layer; 6],
    /// The tap tables for the last batch size (`u32::MAX` for a tap in the padding).
    taps: Option<(usize, TapTables)>,
    buffers: Buffers,
}

struct TapTables {
    /// enc1's taps, 28x28 (image-major) to 14x14, and enc2's, 14x14 to 7x7.
    gather1: Vec<u32>,
    gather2: Vec<u32>,
    /// dec2's targets, 7x7 to 14x14, and dec3's, 14x14 to 28x28 (image-major).
    scatter2: Vec<u32>,
    scatter3: Vec<u32>,
}

impl TapTables {
    fn new(batch: usize) -> Self {
        let table = |taps: Taps, inside: usize| -> Vec<u32> {
            taps.columns().into_iter().map(|c| if (c as usize) < inside { c as u32 } else { u32::MAX }).collect()
        };
        Self {
            gather1: table(Taps::Gather { side: 28, batch, columns: Columns::ImageMajor }, IMAGE_PIXELS * batch),
            gather2: table(Taps::Gather { side: 14, batch, columns: Columns::PixelMajor }, P1 * batch),
            scatter2: table(Taps::Scatter { side: 7, batch, columns: Columns::PixelMajor }, P1 * batch),
            scatter3: table(Taps::Scatter { side: 14, batch, columns: Columns::ImageMajor }, IMAGE_PIXELS * batch),
        }
    }
}

/// Every layer's output (what its backward pass needs) and the gradients on the way down, kept
/// from step to step so that a step allocates little.
#[derive(Default)]
struct Buffers {
    cols1: Vec<f32>,
    a1: Vec<f32>,
    cols2: Vec<f32>,
    a2: Vec<f32>,
    code: Vec<f32>,
    a4: Vec<f32>,
    contrib5: Vec<f32>,
    a5: Vec<f32>,
    contrib6: Vec<f32>,
    logits: Vec<f32>,
    g_cols: Vec<f32>,
    g_a: Vec<f32>,
    g_b: Vec<f32>,
}

impl Conv {
    pub(super) fn new([c1, c2, latent]: [usize; 3]) -> Self {
        // Each layer's weight and bias sizes, in parameter order.
        let sizes = [(c1 * 9, c1), (c2 * c1 * 9, c2), (latent * c2 * P2, latent), (latent * c2 * P2, c2), (c2 * c1 * 9, c1), (c1 * 9, 1)];
        let layers = Layer::laid_out(sizes).try_into().unwrap_or_else(|_| unreachable!("six sizes, six layers"));
        Self { c1, c2, latent, layers, taps: None, buffers: Buffers::default() }
    }

    pub(super) fn param_count(&self) -> usize {
        Layer::count(&self.layers)
    }

    pub(super) fn step(&mut self, params: &[f32], pixels: &[f32], batch: usize, scale: f32, gradient: &mut [f32]) -> f32 {
        if self.taps.as_ref().is_none_or(|(b, _)| *b != batch) {
            self.taps = Some((batch, TapTables::new(batch)));
        }
        let taps = &self.taps.as_ref().expect("just made").1;
        let (c1, c2, lat) = (self.c1, self.c2, self.latent);
        let (n0, n1, n2) = (IMAGE_PIXELS * batch, P1 * batch, P2 * batch);

        let [enc1, enc2, enc3, dec1, dec2, dec3] = self.layers;
        let [(w1, b1), (w2, b2), (w3, b3), (w4, b4), (w5, b5), (w6, b6)] = self.layers.map(|layer| layer.of(params));
        let bf = &mut self.buffers;

        // Forward.
        gather(&mut bf.cols1, pixels, &taps.gather1, 1, n0, n1);
        matmul(&mut bf.a1, View::rows(w1, c1, 9), View::rows(&bf.cols1, 9, n1));
        add_row_bias(&mut bf.a1, n1, b1, 1);
        relu(&mut bf.a1);

        gather(&mut bf.cols2, &bf.a1, &taps.gather2, c1, n1, n2);
        matmul(&mut bf.a2, View::rows(w2, c2, c1 * 9), View::rows(&bf.cols2, c1 * 9, n2));
        add_row_bias(&mut bf.a2, n2, b2, 1);
        relu(&mut bf.a2);

        // The 7x7 map as one column per image: `[c2 * 49, batch]` is the same memory.
        matmul(&mut bf.code, View::rows(w3, lat, c2 * P2), View::rows(&bf.a2, c2 * P2, batch));
        add_row_bias(&mut bf.code, batch, b3, 1);
        relu(&mut bf.code);

        matmul(&mut bf.a4, View::rows(w4, lat, c2 * P2).t(), View::rows(&bf.code, lat, batch));
        add_row_bias(&mut bf.a4, batch, b4, P2);
        relu(&mut bf.a4);

        matmul(&mut bf.contrib5, View::rows(w5, c2, c1 * 9).t(), View::rows(&bf.a4, c2, n2));
        scatter_add(&mut bf.a5, &bf.contrib5, &taps.scatter2, c1, n1, n2);
        add_row_bias(&mut bf.a5, n1, b5, 1);
        relu(&mut bf.a5);

        matmul(&mut bf.contrib6, View::rows(w6, c1, 9).t(), View::rows(&bf.a5, c1, n1));
        scatter_add(&mut bf.logits, &bf.contrib6, &taps.scatter3, 1, n0, n1);
        add_row_bias(&mut bf.logits, n0, b6, 1);

        let (loss, g_logits) = sigmoid_mse(&bf.logits, pixels, scale);

        // Backward, layer by layer from the logits: each layer's weight and bias gradient go
        // straight to their places in `gradient`.

        // dec3: the logits' gradient back through the scatter is a gather of it.
        let (w_grad, b_grad) = dec3.of_mut(gradient);
        row_sums(&g_logits, n0, 1, b_grad);
        gather(&mut bf.g_cols, &g_logits, &taps.scatter3, 1, n0, n1);
        matmul_into(w_grad, View::rows(&bf.a5, c1, n1), View::rows(&bf.g_cols, 9, n1).t());
        matmul(&mut bf.g_a, View::rows(w6, c1, 9), View::rows(&bf.g_cols, 9, n1));
        relu_back(&mut bf.g_a, &bf.a5);

        // dec2.
        let (w_grad, b_grad) = dec2.of_mut(gradient);
        row_sums(&bf.g_a, n1, 1, b_grad);
        gather(&mut bf.g_cols, &bf.g_a, &taps.scatter2, c1, n1, n2);
        matmul_into(w_grad, View::rows(&bf.a4, c2, n2), View::rows(&bf.g_cols, c1 * 9, n2).t());
        matmul(&mut bf.g_b, View::rows(w5, c2, c1 * 9), View::rows(&bf.g_cols, c1 * 9, n2));
        relu_back(&mut bf.g_b, &bf.a4);

        // dec1: its bias is per output channel, 49 rows of `[c2 * 49, batch]` each.
        let (w_grad, b_grad) = dec1.of_mut(gradient);
        row_sums(&bf.g_b, batch, P2, b_grad);
        matmul_into(w_grad, View::rows(&bf.code, lat, batch), View::rows(&bf.g_b, c2 * P2, batch).t());
        matmul(&mut bf.g_a, View::rows(w4, lat, c2 * P2), View::rows(&bf.g_b, c2 * P2, batch));
        relu_back(&mut bf.g_a, &bf.code);

        // enc3.
        let (w_grad, b_grad) = enc3.of_mut(gradient);
        row_sums(&bf.g_a, batch, 1, b_grad);
        matmul_into(w_grad, View::rows(&bf.g_a, lat, batch), View::rows(&bf.a2, c2 * P2, batch).t());
        matmul(&mut bf.g_b, View::rows(w3, lat, c2 * P2).t(), View::rows(&bf.g_a, lat, batch));
        relu_back(&mut bf.g_b, &bf.a2);

        // enc2: the gradient at its taps goes back to the pixels they were gathered from.
        let (w_grad, b_grad) = enc2.of_mut(gradient);
        row_sums(&bf.g_b, n2, 1, b_grad);
        matmul_into(w_grad, View::rows(&bf.g_b, c2, n2), View::rows(&bf.cols2, c1 * 9, n2).t());
        matmul(&mut bf.g_cols, View::rows(w2, c2, c1 * 9).t(), View::rows(&bf.g_b, c2, n2));
        scatter_add(&mut bf.g_a, &bf.g_cols, &taps.gather2, c1, n1, n2);
        relu_back(&mut bf.g_a, &bf.a1);

        // enc1: the images need no gradient.
        let (w_grad, b_grad) = enc1.of_mut(gradient);
        row_sums(&bf.g_a, n1, 1, b_grad);
        matmul_into(w_grad, View::rows(&bf.g_a, c1, n1), View::rows(&bf.cols1, 9, n1).t());

        loss
    }
}

/// `cols[(c, t), n] = src[c, idx[t, n]]` (0 for a tap outside): `src` is `[channels, src_cols]`,
/// `idx` 9 rows of `cols` targets, and `out` becomes `[channels * 9, cols]`.
fn gather(out: &mut Vec<f32>, src: &[f32], idx: &[u32], channels: usize, src_cols: usize, cols: usize) {
    assert_eq!(src.len(), channels * src_cols);
    assert_eq!(idx.len(), 9 * cols);
    out.clear();
    out.reserve(channels * 9 * cols);
    for c in 0..channels {
        let row = &src[c * src_cols..][..src_cols];
        out.extend(idx.iter().map(|&i| row.get(i as usize).copied().unwrap_or(0.0)));
    }
}

/// `out[c, idx[t, n]] += contrib[(c, t), n]` into a fresh zero `out` of `[channels, out_cols]`:
/// the taps added back onto the pixels they belong to, those outside dropped.
fn scatter_add(out: &mut Vec<f32>, contrib: &[f32], idx: &[u32], channels: usize, out_cols: usize, cols: usize) {
    assert_eq!(contrib.len(), channels * 9 * cols);
    assert_eq!(idx.len(), 9 * cols);
    out.clear();
    out.resize(channels * out_cols, 0.0);
    for c in 0..channels {
        let row = &mut out[c * out_cols..][..out_cols];
        for (&i, &v) in idx.iter().zip(&contrib[c * 9 * cols..][..9 * cols]) {
            if let Some(slot) = row.get_mut(i as usize) {
                *slot += v;
            }
        }
    }
}
