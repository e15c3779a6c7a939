//! A drawn digit made into an MNIST-style 28x28 image, the way the MNIST digits were made:
//! the stroke's bounding box is scaled (aspect kept, anti-aliased) to fit a 20x20 box, then the
//! result is placed in the 28x28 frame so that its centre of mass is at the frame's centre.

use crate::data::{IMAGE_PIXELS, IMAGE_SIDE};

/// The side of the box MNIST fitted each digit into (LeCun et al.'s description of the data set).
const DIGIT_BOX: usize = 20;
/// Ink fainter than this is anti-aliasing fuzz, not stroke, when finding the stroke's box.
const INK_THRESHOLD: f32 = 0.05;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DrawingError {
    #[error("nothing drawn: draw a digit on the pad first")]
    Blank,
    #[error("the drawing has {got} values but {width}x{height} needs {expected}")]
    Size { got: usize, width: usize, height: usize, expected: usize },
    #[error("a {width}x{height} drawing has more pixels than any memory holds; pass the pad's own size")]
    TooLarge { width: usize, height: usize },
    #[error("value {index} of the drawing is not a number; ink is a value in [0, 1]")]
    NotANumber { index: usize },
}

/// `ink` is `width * height` values in [0, 1], row-major (1 = full ink). Returns 784 pixels in
/// [0, 1]. Values outside [0, 1] count as the nearest end; NaN is refused, since it would spread
/// through the scaling into every output pixel it touches.
pub fn mnist_style(ink: &[f32], width: usize, height: usize) -> Result<Vec<f32>, DrawingError> {
    // Checked: the sizes come from the page, and a product that wrapped around (easily done with
    // a 32-bit usize on wasm) could match a short `ink` and send the indexing below past its end.
    let expected = width.checked_mul(height).ok_or(DrawingError::TooLarge { width, height })?;
    if ink.len() != expected || expected == 0 {
        return Err(DrawingError::Size { got: ink.len(), width, height, expected });
    }
    if let Some(index) = ink.iter().position(|v| v.is_nan()) {
        return Err(DrawingError::NotANumber { index });
    }
    let (x0, y0, x1, y1) = ink_box(ink, width).ok_or(DrawingError::Blank)?;
    let (box_w, box_h) = (x1 - x0, y1 - y0);

    // Scale so the longer side becomes 20 pixels; the shorter keeps the aspect ratio.
    let scale = DIGIT_BOX as f32 / box_w.max(box_h) as f32;
    let out_w = ((box_w as f32 * scale).round() as usize).clamp(1, DIGIT_BOX);
    let out_h = ((box_h as f32 * scale).round() as usize).clamp(1, DIGIT_BOX);
    let cols = area_weights(x0, box_w, out_w);
    let rows = area_weights(y0, box_h, out_h);
    let mut small = vec![0f32; out_w * out_h];
    for (oy, row_weights) in rows.iter().enumerate() {
        for (ox, col_weights) in cols.iter().enumerate() {
            let mut sum = 0.0;
            for &(sy, wy) in row_weights {
                for &(sx, wx) in col_weights {
                    sum += wy * wx * ink[sy * width + sx].clamp(0.0, 1.0);
                }
            }
            small[oy * out_w + ox] = sum;
        }
    }

    // Centre of mass of the scaled digit, in pixel-centre coordinates.
    let (mut mass, mut mx, mut my) = (0f32, 0f32, 0f32);
    for y in 0..out_h {
        for x in 0..out_w {
            let v = small[y * out_w + x];
            mass += v;
            mx += v * (x as f32 + 0.5);
            my += v * (y as f32 + 0.5);
        }
    }
    let centre = IMAGE_SIDE as f32 / 2.0;
    let dx = (centre - mx / mass).round() as isize;
    let dy = (centre - my / mass).round() as isize;

    let mut out = vec![0f32; IMAGE_PIXELS];
    for y in 0..out_h {
        for x in 0..out_w {
            let (tx, ty) = (x as isize + dx, y as isize + dy);
            if (0..IMAGE_SIDE as isize).contains(&tx) && (0..IMAGE_SIDE as isize).contains(&ty) {
                out[ty as usize * IMAGE_SIDE + tx as usize] = small[y * out_w + x].clamp(0.0, 1.0);
            }
        }
    }
    Ok(out)
}

/// The smallest box (x0, y0, x1, y1), end-exclusive, holding every pixel with ink.
fn ink_box(ink: &[f32], width: usize) -> Option<(usize, usize, usize, usize)> {
    let mut found: Option<(usize, usize, usize, usize)> = None;
    for (i, _) in ink.iter().enumerate().filter(|(_, v)| **v > INK_THRESHOLD) {
        let (x, y) = (i % width, i / width);
        found = Some(match found {
            None => (x, y, x + 1, y + 1),
            Some((x0, y0, x1, y1)) => (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1)),
        });
    }
    found
}

/// For each of `dst` output pixels covering source pixels `start..start + len`, the source pixels
/// it overlaps and the share of the output pixel each covers (an exact box filter, so it
/// anti-aliases when shrinking and stays sharp when enlarging).
fn area_weights(start: usize, len: usize, dst: usize) -> Vec<Vec<(usize, f32)>> {
    let step = len as f32 / dst as f32;
    (0..dst)
        .map(|o| {
            let (lo, hi) = (o as f32 * step, (o + 1) as f32 * step);
            (lo.floor() as usize..(hi.ceil() as usize).min(len))
                .map(|s| {
                    let overlap = (hi.min(s as f32 + 1.0) - lo.max(s as f32)).max(0.0);
                    (start + s, overlap / step)
                })
                .filter(|&(_, w)| w > 0.0)
                .collect()
        })
        .collect()
}
