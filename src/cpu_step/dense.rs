//! The dense model's step: 8 linear layers, `y = x · W + b` with burn's `Linear` layout (`W` is
//! `[inputs, outputs]`, then `b`), ReLU between layers, the code's own activation after the 4th,
//! and the fused sigmoid and MSE at the end. Activations are row-major `[batch, features]`.

use super::matmul::{View, matmul, matmul_into};
use super::sigmoid_mse::sigmoid_mse;
use super::{Layer, add_col_bias, relu, relu_back};

pub(super) struct Dense {
    /// The layers' widths, input first: `[784, 128, 64, 12, 3, 12, 64, 128, 784]`.
    widths: Vec<usize>,
    /// Each layer's place in the parameters.
    layers: Vec<Layer>,
    code_relu: bool,
    /// Each layer's input, kept for the backward pass (the first is the images).
    inputs: Vec<Vec<f32>>,
    logits: Vec<f32>,
    grad: Vec<f32>,
    grad_next: Vec<f32>,
}

impl Dense {
    /// `encoder` is the encoder's widths, `[784, h1, h2, h3, latent]`; the decoder mirrors it.
    pub(super) fn new(encoder: Vec<usize>, code_relu: bool) -> Self {
        let mut widths = encoder.clone();
        widths.extend(encoder.iter().rev().skip(1));
        let layers = Layer::laid_out(widths.windows(2).map(|w| (w[0] * w[1], w[1])));
        let inputs = vec![Vec::new(); layers.len()];
        Self { widths, layers, code_relu, inputs, logits: Vec::new(), grad: Vec::new(), grad_next: Vec::new() }
    }

    pub(super) fn param_count(&self) -> usize {
        Layer::count(&self.layers)
    }

    /// Whether layer `l`'s output goes through a ReLU.
    fn relu_after(&self, l: usize) -> bool {
        let code = self.widths.len() / 2 - 1;
        l + 2 < self.widths.len() && (l != code || self.code_relu)
    }

    pub(super) fn step(&mut self, params: &[f32], pixels: &[f32], batch: usize, scale: f32, gradient: &mut [f32]) -> f32 {
        let last = self.layers.len() - 1;

        // Forward: keep each layer's input.
        self.inputs[0].clear();
        self.inputs[0].extend_from_slice(pixels);
        for l in 0..=last {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let (w, b) = self.layers[l].of(params);
            let mut y = if l == last { std::mem::take(&mut self.logits) } else { std::mem::take(&mut self.inputs[l + 1]) };
            matmul(&mut y, View::rows(&self.inputs[l], batch, i), View::rows(w, i, o));
            add_col_bias(&mut y, b);
            if self.relu_after(l) {
                relu(&mut y);
            }
            if l == last { self.logits = y } else { self.inputs[l + 1] = y }
        }

        let (loss, grad) = sigmoid_mse(&self.logits, pixels, scale);
        self.grad = grad;

        // Backward: from the logits down, each layer's weight and bias gradient, then the
        // gradient at its input (not needed below the first).
        for l in (0..=last).rev() {
            let (i, o) = (self.widths[l], self.widths[l + 1]);
            let (w_grad, b_grad) = self.layers[l].of_mut(gradient);
            matmul_into(w_grad, View::rows(&self.inputs[l], batch, i).t(), View::rows(&self.grad, batch, o));
            for row in self.grad.chunks_exact(o) {
                b_grad.iter_mut().zip(row).for_each(|(s, g)| *s += g);
            }
            if l > 0 {
                let (w, _) = self.layers[l].of(params);
                matmul(&mut self.grad_next, View::rows(&self.grad, batch, o), View::rows(w, i, o).t());
                if self.relu_after(l - 1) {
                    relu_back(&mut self.grad_next, &self.inputs[l]);
                }
                std::mem::swap(&mut self.grad, &mut self.grad_next);
            }
        }
        loss
    }
}
