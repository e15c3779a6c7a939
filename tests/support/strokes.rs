//! Test images for the hand-written steps' checks, shared by the CPU step's (natively and in
//! wasm) and the GPU step's: strokes of ink on a blank background, different in each image, so
//! that every pixel's gradient is exercised without reading the MNIST files. Self-contained (no
//! crate paths), since it is included both inside the crate and from its tests.

/// `n` 28x28 images, row-major, one after another.
pub fn images(n: usize) -> Vec<f32> {
    const PIXELS: usize = 28 * 28;
    let mut pixels = vec![0.0; n * PIXELS];
    for (i, image) in pixels.chunks_exact_mut(PIXELS).enumerate() {
        for y in 4..24 {
            let x = 6 + (y * (i + 3) / 7) % 16;
            image[y * 28 + x] = 1.0;
            image[y * 28 + x + 1] = 0.5 + 0.05 * (i % 10) as f32;
        }
    }
    pixels
}
