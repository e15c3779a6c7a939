//! The conv model's stride-2 layers, in CubeCL: the 3x3, stride-2 convolutions of the encoder
//! and the transposed ones of the decoder (padding 1, output padding 1), forward and backward, a
//! launch each way. (Its 7x7 layers are products of whole feature maps, [`super::kernels`]'
//! dense layers.)
//!
//! A feature map is `[batch, channels, side, side]`, row-major, the images included. Each layer
//! joins a small map (`side`) and a big one (`2 side`): a convolution goes from big to small,
//! a transposed one from small to big, and the input gradient of each goes the other way. So
//! there are two products, each a [`ROWS`] x [`COLS`] tile a unit (8 x 4, as the dense layers'),
//! with the taps folded into where each row reads, no gather or scatter pass:
//! - **down** ([`down_tile`]): a pixel of the small map sums the 9 taps `(2y - 1 + ky, 2x - 1 +
//!   kx)` of the big one: a convolution's forward pass, a transposed one's input gradient;
//! - **up** ([`up_tile`]): a pixel `(2y + py, 2x + px)` of the big map sums the taps that reach
//!   it, 1, 2 or 4 of the 9 by its parity `(py, px)`: a transposed convolution's forward pass, a
//!   convolution's input gradient. The tiles take their rows from one parity class, so that a
//!   tile's taps are the same in every row and none is multiplied only to be dropped.
//!
//! Weights are burn's: a convolution's `[out, in, 3, 3]`, a transposed one's `[in, out, 3, 3]`;
//! in both the first index is the small map's channel, so weight `(s, b, ky, kx)` is at `s 9
//! c_big + b 9 + 3 ky + kx` from the layer's start, and its gradient is the same sum for both,
//! [`weight_tile`]. Taps off the map read a valid address and are multiplied by 0.

use burn::cubecl;
use cubecl::prelude::*;

use super::kernels::{COLS, ROWS, bias_gradient, finish_output, masked_tile_product, spill};

/// Units of a stride-2 layer's forward launch, for `batch` images of a small map of `side`.
pub(super) fn forward_units(up: bool, batch: usize, side: usize, c_small: usize, c_big: usize) -> usize {
    match up {
        false => (batch * side * side).div_ceil(ROWS) * c_small.div_ceil(COLS),
        true if c_big == 1 => (batch * side * side).div_ceil(ROWS),
        true => 4 * (batch * side * side).div_ceil(ROWS) * c_big.div_ceil(COLS),
    }
}

/// Units of a stride-2 layer's backward launch: its input gradient's (where asked), its
/// weights', its biases'.
pub(super) fn backward_units(up: bool, input_grad: bool, batch: usize, side: usize, c_small: usize, c_big: usize) -> usize {
    let input = if input_grad { forward_units(!up, batch, side, c_small, c_big) } else { 0 };
    let out_channels = if up { c_big } else { c_small };
    input + c_small.div_ceil(ROWS) * (9 * c_big).div_ceil(COLS) + out_channels
}

/// Where a tile's rows and columns are: `first` is the first of its [`ROWS`] pixels (image-major
/// over `count` pixels of a map of `side`, rows past the end standing in for the last), and
/// `first_c` the first of its [`COLS`] output channels (of `channels`). The pixels' image, y and
/// x, and the columns' channels.
#[cube]
fn tile_places(first: usize, count: usize, side: usize, first_c: usize, channels: usize) -> (Array<usize>, Array<usize>, Array<usize>, Array<usize>) {
    let mut images = Array::<usize>::new(ROWS);
    let mut ys = Array::<usize>::new(ROWS);
    let mut xs = Array::<usize>::new(ROWS);
    let mut cs = Array::<usize>::new(COLS);
    let pixels = side * side;
    #[unroll]
    for r in 0..ROWS {
        let n = usize::min(first + r, count - 1);
        let p = n % pixels;
        images[r] = n / pixels;
        ys[r] = p / side;
        xs[r] = p % side;
    }
    #[unroll]
    for c in 0..COLS {
        cs[c] = usize::min(first_c + c, channels - 1);
    }
    (images, ys, xs, cs)
}

/// The down product for a tile: `ROWS` pixels of the small map (`side`, `c_small` channels) from
/// pixel `first` (image-major), `COLS` of its channels from `first_c`, each summing its 9 taps of
/// the big map `x` (`c_big` channels, from `x_at`) times the weights at `at`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn down_tile(x: &[f32], x_at: usize, params: &[f32], at: usize, batch: usize, side: usize, c_small: usize, c_big: usize, first: usize, first_c: usize, sums: &mut Array<f32>) {
    #[unroll]
    for k in 0..ROWS * COLS {
        sums[k] = 0.0;
    }
    let (big_side, count) = (2 * side, batch * side * side);
    let big = big_side * big_side;
    let (images, ys, xs, cs) = tile_places(first, count, side, first_c, c_small);
    let mut rows = Array::<usize>::new(ROWS);
    let mut mask = Array::<f32>::new(ROWS);
    let mut cols = Array::<usize>::new(COLS);
    for t in 0..9usize {
        let (ky, kx) = (t / 3, t % 3);
        #[unroll]
        for r in 0..ROWS {
            // (2y - 1 + ky, 2x - 1 + kx) is off the map only at y = 0, ky = 0 (or x, kx): read
            // row (or column) 0 there instead, times 0.
            let (y1, x1) = (2 * ys[r] + ky, 2 * xs[r] + kx);
            mask[r] = select(y1 >= 1 && x1 >= 1, 1.0f32, 0.0f32);
            rows[r] = x_at + images[r] * c_big * big + (usize::max(y1, 1) - 1) * big_side + usize::max(x1, 1) - 1;
        }
        #[unroll]
        for c in 0..COLS {
            cols[c] = at + cs[c] * 9 * c_big + t;
        }
        masked_tile_product(x, &rows, &mask, big, params, &cols, 9, c_big, sums, ROWS, true);
    }
}

/// The up product for a tile: `ROWS` pixels `(2y + py, 2x + px)` of the big map of one parity
/// class `class` (`2 py + px`) from its pixel `first` (image-major over the small map's `side`),
/// `COLS` of its `c_big` channels from `first_c`, each summing the taps of the small map `x`
/// (`c_small` channels, from `x_at`) that reach it. A big pixel `2y` is reached by tap 1 from small
/// pixel `y` alone, `2y + 1` by tap 0 from `y + 1` (if there is one) and tap 2 from `y`.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn up_tile(x: &[f32], x_at: usize, params: &[f32], at: usize, batch: usize, side: usize, c_small: usize, c_big: usize, class: usize, first: usize, first_c: usize, sums: &mut Array<f32>) {
    #[unroll]
    for k in 0..ROWS * COLS {
        sums[k] = 0.0;
    }
    let (py, px) = (class / 2, class % 2);
    let (small, count) = (side * side, batch * side * side);
    let (images, ys, xs, cs) = tile_places(first, count, side, first_c, c_big);
    let mut rows = Array::<usize>::new(ROWS);
    let mut mask = Array::<f32>::new(ROWS);
    let mut cols = Array::<usize>::new(COLS);
    for ty in 0..py + 1 {
        // The tap and the small pixel's offset: (1, 0) for an even pixel; (0, 1), then (2, 0).
        let (ky, dy) = (select(py == 0, 1usize, 2 * ty), select(py == 1 && ty == 0, 1usize, 0usize));
        for tx in 0..px + 1 {
            let (kx, dx) = (select(px == 0, 1usize, 2 * tx), select(px == 1 && tx == 0, 1usize, 0usize));
            #[unroll]
            for r in 0..ROWS {
                let (y, x1) = (ys[r] + dy, xs[r] + dx);
                mask[r] = select(y < side && x1 < side, 1.0f32, 0.0f32);
                rows[r] = x_at + images[r] * c_small * small + usize::min(y, side - 1) * side + usize::min(x1, side - 1);
            }
            #[unroll]
            for c in 0..COLS {
                cols[c] = at + cs[c] * 9 + ky * 3 + kx;
            }
            masked_tile_product(x, &rows, &mask, small, params, &cols, 9 * c_big, c_small, sums, ROWS, true);
        }
    }
}

/// The weights' gradient for a tile of `ROWS` small-map channels from `first_s` by `COLS` of the
/// `9 c_big` (big channel, tap) pairs from `first_j`: the sum over the images and the small map's
/// pixels of `small[b, s, y, x] big[b, c, 2y - 1 + ky, 2x - 1 + kx]`. For a convolution the small
/// map is the output's gradient and the big one its input; for a transposed one the other way.
#[cube]
#[allow(clippy::too_many_arguments)]
pub(super) fn weight_tile(small: &[f32], small_at: usize, big: &[f32], big_at: usize, batch: usize, side: usize, c_small: usize, c_big: usize, first_s: usize, first_j: usize, sums: &mut Array<f32>) {
    #[unroll]
    for k in 0..ROWS * COLS {
        sums[k] = 0.0;
    }
    let (big_side, pixels) = (2 * side, side * side);
    let big_pixels = big_side * big_side;
    let mut rows = Array::<usize>::new(ROWS);
    let mut channels = Array::<usize>::new(COLS);
    let mut kys = Array::<usize>::new(COLS);
    let mut kxs = Array::<usize>::new(COLS);
    #[unroll]
    for r in 0..ROWS {
        rows[r] = small_at + usize::min(first_s + r, c_small - 1) * pixels;
    }
    #[unroll]
    for c in 0..COLS {
        let j = usize::min(first_j + c, 9 * c_big - 1);
        channels[c] = big_at + (j / 9) * big_pixels;
        kys[c] = (j % 9) / 3;
        kxs[c] = j % 3;
    }
    for b in 0..batch {
        let (small_image, big_image) = (b * c_small * pixels, b * c_big * big_pixels);
        for y in 0..side {
            let mut big_rows = Array::<usize>::new(COLS);
            let mut row_in = Array::<f32>::new(COLS);
            #[unroll]
            for c in 0..COLS {
                let y1 = 2 * y + kys[c];
                row_in[c] = select(y1 >= 1, 1.0f32, 0.0f32);
                big_rows[c] = channels[c] + big_image + (usize::max(y1, 1) - 1) * big_side;
            }
            for x in 0..side {
                let p = small_image + y * side + x;
                let mut av = Array::<f32>::new(ROWS);
                let mut bv = Array::<f32>::new(COLS);
                #[unroll]
                for r in 0..ROWS {
                    av[r] = small[rows[r] + p];
                }
                #[unroll]
                for c in 0..COLS {
                    let x1 = 2 * x + kxs[c];
                    let inside = row_in[c] * select(x1 >= 1, 1.0f32, 0.0f32);
                    bv[c] = big[big_rows[c] + usize::max(x1, 1) - 1] * inside;
                }
                #[unroll]
                for r in 0..ROWS {
                    #[unroll]
                    for c in 0..COLS {
                        sums[r * COLS + c] += av[r] * bv[c];
                    }
                }
            }
        }
    }
}

/// The up product onto a big map of one channel (the conv model's output layer), where a tile of
/// channels would be mostly unused columns: each of `ROWS` small-map pixels from `first`
/// (image-major) gives the 4 big pixels `(2y + py, 2x + px)` it is the top left of, from its own
/// value and its right, lower and lower right neighbours' (0 off the map), all 9 taps of each
/// channel read once for the tile. `sums[4 r + 2 py + px]`.
#[cube]
#[allow(clippy::too_many_arguments)]
fn up_one_channel_tile(x: &[f32], x_at: usize, params: &[f32], at: usize, batch: usize, side: usize, c_small: usize, first: usize, sums: &mut Array<f32>) {
    #[unroll]
    for k in 0..ROWS * 4 {
        sums[k] = 0.0;
    }
    let (small, count) = (side * side, batch * side * side);
    let mut base = Array::<usize>::new(ROWS);
    let mut right = Array::<usize>::new(ROWS);
    let mut below = Array::<usize>::new(ROWS);
    let mut has_right = Array::<f32>::new(ROWS);
    let mut has_below = Array::<f32>::new(ROWS);
    #[unroll]
    for r in 0..ROWS {
        let n = usize::min(first + r, count - 1);
        let (b, p) = (n / small, n % small);
        let (y, x1) = (p / side, p % side);
        base[r] = x_at + b * c_small * small + p;
        right[r] = select(x1 + 1 < side, 1usize, 0usize);
        below[r] = select(y + 1 < side, side, 0usize);
        has_right[r] = select(x1 + 1 < side, 1.0f32, 0.0f32);
        has_below[r] = select(y + 1 < side, 1.0f32, 0.0f32);
    }
    for ch in 0..c_small {
        let mut w = Array::<f32>::new(9usize);
        #[unroll]
        for t in 0..9 {
            w[t] = params[at + ch * 9 + t];
        }
        let plane = ch * small;
        #[unroll]
        for r in 0..ROWS {
            let at_r = base[r] + plane;
            let a00 = x[at_r];
            let a01 = x[at_r + right[r]] * has_right[r];
            let a10 = x[at_r + below[r]] * has_below[r];
            let a11 = x[at_r + below[r] + right[r]] * (has_right[r] * has_below[r]);
            // Tap (ky, kx) is w[3 ky + kx]; an even big row takes ky = 1 from row y, an odd one
            // ky = 2 from row y and ky = 0 from row y + 1 (and the same across).
            sums[4 * r] += a00 * w[4];
            sums[4 * r + 1] += a00 * w[5] + a01 * w[3];
            sums[4 * r + 2] += a00 * w[7] + a10 * w[1];
            sums[4 * r + 3] += a00 * w[8] + a01 * w[6] + a10 * w[2] + a11 * w[0];
        }
    }
}

/// [`spill`] for [`up_one_channel_tile`]'s sums.
#[cube]
fn spill_four(sums: &Array<f32>) -> Array<f32> {
    let mut out = Array::<f32>::new(ROWS * 4);
    #[unroll]
    for k in 0..ROWS * 4 {
        out[k] = sums[k];
    }
    out
}

/// A stride-2 layer's forward pass (`up`: 1 for a transposed convolution), its bias added, then
/// a ReLU (`relu` 1) or, as the last layer (`loss` 1), the sigmoid-MSE of [`super::kernels`]'
/// `layer_forward`: the logits' gradient to `y`, each unit's squared errors to `partials`. The
/// input starts at `x_at` in `x`; its small map has `side`, the layer's weights start at `at`.
#[cube(launch)]
pub(super) fn stride2_forward(
    x: &[f32],
    params: &[f32],
    targets: &[f32],
    y: &mut [f32],
    partials: &mut [f32],
    batch: u32,
    side: u32,
    c_small: u32,
    c_big: u32,
    at: u32,
    x_at: u32,
    targets_at: u32,
    factor: f32,
    up: u32,
    relu: u32,
    loss: u32,
) {
    let index = ABSOLUTE_POS;
    let (batch, side, c_small, c_big, at, x_at) = (batch as usize, side as usize, c_small as usize, c_big as usize, at as usize, x_at as usize);
    let row_tiles = (batch * side * side).div_ceil(ROWS);
    let mut channels = c_small;
    let mut out_side = side;
    let mut classes = 1usize;
    if up == 1 {
        channels = c_big;
        out_side = 2 * side;
        classes = 4;
    }
    let col_tiles = channels.div_ceil(COLS);
    let (pixels, out_pixels) = (side * side, out_side * out_side);
    let bias_at = at + 9 * c_small * c_big;
    let mut squares = 0.0f32;
    let one_channel = up == 1 && c_big == 1;
    let mut units = classes * row_tiles * col_tiles;
    if one_channel {
        units = row_tiles;
    }
    if one_channel {
        if index < row_tiles {
            let first = index * ROWS;
            let mut sums = Array::<f32>::new(ROWS * 4);
            up_one_channel_tile(x, x_at, params, at, batch, side, c_small, first, &mut sums);
            let bias = params[bias_at];
            let sums = spill_four(&sums);
            for r in 0..ROWS {
                let n = first + r;
                if n < batch * pixels {
                    let (b, p) = (n / pixels, n % pixels);
                    for class in 0..4usize {
                        let q = (2 * (p / side) + class / 2) * out_side + 2 * (p % side) + class % 2;
                        squares += finish_output(sums[4 * r + class] + bias, b * out_pixels + q, 0, targets, targets_at as usize, y, factor, relu, loss);
                    }
                }
            }
        }
    } else if index < classes * row_tiles * col_tiles {
        let class = index / (row_tiles * col_tiles);
        let within = index % (row_tiles * col_tiles);
        let (first, first_c) = (within / col_tiles * ROWS, within % col_tiles * COLS);
        let mut sums = Array::<f32>::new(ROWS * COLS);
        if up == 1 {
            up_tile(x, x_at, params, at, batch, side, c_small, c_big, class, first, first_c, &mut sums);
        } else {
            down_tile(x, x_at, params, at, batch, side, c_small, c_big, first, first_c, &mut sums);
        }
        let mut biases = Array::<f32>::new(COLS);
        #[unroll]
        for c in 0..COLS {
            biases[c] = params[bias_at + usize::min(first_c + c, channels - 1)];
        }
        let sums = spill(&sums);
        for r in 0..ROWS {
            let n = first + r;
            let (b, p) = (n / pixels, n % pixels);
            // The pixel in the output map: itself, or its place in its parity class.
            let mut q = p;
            if up == 1 {
                q = (2 * (p / side) + class / 2) * out_side + 2 * (p % side) + class % 2;
            }
            for c in 0..COLS {
                let o = first_c + c;
                if n < batch * pixels && o < channels {
                    let k = b * channels * out_pixels + o * out_pixels + q;
                    squares += finish_output(sums[r * COLS + c] + biases[c], k, 0, targets, targets_at as usize, y, factor, relu, loss);
                }
            }
        }
    }
    if index < units && loss == 1 {
        partials[index] = squares;
    }
}

/// A stride-2 layer's backward pass in one launch, as [`super::kernels`]' `layer_backward` for a
/// dense one: where `input_grad` is 1, the first units each a tile of the input's gradient (up
/// for a convolution, down for a transposed one), zero where the ReLU before was off
/// (`relu_before` 1); then a unit per tile of the weights' gradient, then one per bias. The
/// weights' and biases' gradients go to `grads` at `at`, the input's to `gx`.
///
/// The layer's two maps come as `small` (from `small_at`) and `big` (from `big_at`): for a
/// convolution the output's gradient and the input, for a transposed one the input and the
/// output's gradient. So each product is written once in the kernel (a kernel cannot pick one
/// of two buffers at run time without a copy of the code for each), which keeps the pipeline
/// SwiftShader compiles before the first step half as long.
#[cube(launch)]
pub(super) fn stride2_backward(
    small: &[f32],
    big: &[f32],
    params: &[f32],
    grads: &mut [f32],
    gx: &mut [f32],
    batch: u32,
    side: u32,
    c_small: u32,
    c_big: u32,
    at: u32,
    small_at: u32,
    big_at: u32,
    up: u32,
    input_grad: u32,
    relu_before: u32,
) {
    let index = ABSOLUTE_POS;
    let (batch, side, c_small, c_big, at) = (batch as usize, side as usize, c_small as usize, c_big as usize, at as usize);
    let (small_at, big_at) = (small_at as usize, big_at as usize);
    let row_tiles = (batch * side * side).div_ceil(ROWS);
    let (pixels, big_pixels) = (side * side, 4 * side * side);
    // The input gradient's units: a convolution's input is the big map (up tiles, 4 classes),
    // a transposed one's the small map (down tiles).
    let mut input_units = 4 * row_tiles * c_big.div_ceil(COLS);
    if up == 1 {
        input_units = row_tiles * c_small.div_ceil(COLS);
    }
    if input_grad == 0 {
        input_units = 0;
    }
    let weight_cols = (9 * c_big).div_ceil(COLS);
    let weight_units = c_small.div_ceil(ROWS) * weight_cols;
    if index < input_units {
        let mut sums = Array::<f32>::new(ROWS * COLS);
        if up == 1 {
            // The output's gradient is the big map; the input's, on the small map, sums its taps.
            let col_tiles = c_small.div_ceil(COLS);
            let (first, first_c) = (index / col_tiles * ROWS, index % col_tiles * COLS);
            down_tile(big, big_at, params, at, batch, side, c_small, c_big, first, first_c, &mut sums);
            let sums = spill(&sums);
            for r in 0..ROWS {
                let n = first + r;
                let (b, p) = (n / pixels, n % pixels);
                for c in 0..COLS {
                    let i = first_c + c;
                    if n < batch * pixels && i < c_small {
                        let k = b * c_small * pixels + i * pixels + p;
                        let mut sum = sums[r * COLS + c];
                        if relu_before == 1 {
                            sum = select(small[small_at + k] > 0.0, sum, 0.0f32);
                        }
                        gx[k] = sum;
                    }
                }
            }
        } else {
            // The output's gradient is the small map; the input's, on the big map, is reached by
            // its taps.
            let col_tiles = c_big.div_ceil(COLS);
            let class = index / (row_tiles * col_tiles);
            let within = index % (row_tiles * col_tiles);
            let (first, first_c) = (within / col_tiles * ROWS, within % col_tiles * COLS);
            up_tile(small, small_at, params, at, batch, side, c_small, c_big, class, first, first_c, &mut sums);
            let sums = spill(&sums);
            for r in 0..ROWS {
                let n = first + r;
                let (b, p) = (n / pixels, n % pixels);
                let q = (2 * (p / side) + class / 2) * (2 * side) + 2 * (p % side) + class % 2;
                for c in 0..COLS {
                    let i = first_c + c;
                    if n < batch * pixels && i < c_big {
                        let k = b * c_big * big_pixels + i * big_pixels + q;
                        let mut sum = sums[r * COLS + c];
                        if relu_before == 1 {
                            sum = select(big[big_at + k] > 0.0, sum, 0.0f32);
                        }
                        gx[k] = sum;
                    }
                }
            }
        }
    } else {
        let index = index - input_units;
        if index < weight_units {
            let (first_s, first_j) = (index / weight_cols * ROWS, index % weight_cols * COLS);
            let mut sums = Array::<f32>::new(ROWS * COLS);
            weight_tile(small, small_at, big, big_at, batch, side, c_small, c_big, first_s, first_j, &mut sums);
            let sums = spill(&sums);
            for r in 0..ROWS {
                for c in 0..COLS {
                    let (s, j) = (first_s + r, first_j + c);
                    if s < c_small && j < 9 * c_big {
                        grads[at + s * 9 * c_big + j] = sums[r * COLS + c];
                    }
                }
            }
        } else {
            // A bias's gradient: the output's gradient summed over its channel, on the big map
            // for a transposed convolution, the small one for a convolution.
            let (o, biases_at) = (index - weight_units, at + 9 * c_small * c_big);
            if up == 1 {
                if o < c_big {
                    bias_gradient(big, big_at, grads, biases_at, batch, c_big * big_pixels, big_pixels, o);
                }
            } else if o < c_small {
                bias_gradient(small, small_at, grads, biases_at, batch, c_small * pixels, pixels, o);
            }
        }
    }
}
