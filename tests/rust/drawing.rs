//! Drawings made into MNIST-style digits.

use autoencoder_lab::data::{IMAGE_PIXELS, IMAGE_SIDE};
use autoencoder_lab::drawing::{DrawingError, mnist_style};

const PAD: usize = 280;

/// A pad with a filled rectangle of ink (x0..x1, y0..y1).
fn pad_with_rect(x0: usize, y0: usize, x1: usize, y1: usize) -> Vec<f32> {
    let mut ink = vec![0.0; PAD * PAD];
    for y in y0..y1 {
        for x in x0..x1 {
            ink[y * PAD + x] = 1.0;
        }
    }
    ink
}

fn ink_extent(image: &[f32]) -> (usize, usize, usize, usize) {
    let inked: Vec<usize> = (0..IMAGE_PIXELS).filter(|&i| image[i] > 0.0).collect();
    let xs = inked.iter().map(|i| i % IMAGE_SIDE);
    let ys = inked.iter().map(|i| i / IMAGE_SIDE);
    (xs.clone().min().unwrap(), ys.clone().min().unwrap(), xs.max().unwrap(), ys.max().unwrap())
}

fn centre_of_mass(image: &[f32]) -> (f32, f32) {
    let mass: f32 = image.iter().sum();
    let mx: f32 = image.iter().enumerate().map(|(i, v)| v * ((i % IMAGE_SIDE) as f32 + 0.5)).sum();
    let my: f32 = image.iter().enumerate().map(|(i, v)| v * ((i / IMAGE_SIDE) as f32 + 0.5)).sum();
    (mx / mass, my / mass)
}

#[test]
fn a_tall_stroke_in_a_corner_is_scaled_to_20_pixels_and_centred() {
    // A 30x120 bar in the top-left corner: its long side becomes 20 pixels, its short side 5.
    let out = mnist_style(&pad_with_rect(10, 10, 40, 130), PAD, PAD).unwrap();
    assert_eq!(out.len(), IMAGE_PIXELS);
    let (x0, y0, x1, y1) = ink_extent(&out);
    assert_eq!(y1 - y0 + 1, 20);
    assert_eq!(x1 - x0 + 1, 5);
    let (cx, cy) = centre_of_mass(&out);
    assert!((cx - 14.0).abs() <= 0.5 && (cy - 14.0).abs() <= 0.5, "centre of mass ({cx}, {cy})");
    assert!(out.iter().all(|v| (0.0..=1.0).contains(v)));
}

#[test]
fn a_small_drawing_is_enlarged_not_left_tiny() {
    let out = mnist_style(&pad_with_rect(200, 200, 210, 215), PAD, PAD).unwrap();
    let (_, y0, _, y1) = ink_extent(&out);
    assert_eq!(y1 - y0 + 1, 20);
}

#[test]
fn a_thin_diagonal_keeps_partial_ink_from_antialiasing() {
    let mut ink = vec![0.0; PAD * PAD];
    for i in 20..260 {
        ink[i * PAD + i] = 1.0;
    }
    let out = mnist_style(&ink, PAD, PAD).unwrap();
    assert!(out.iter().any(|&v| v > 0.0 && v < 1.0), "a 1-pixel line shrunk 12x should be grey");
}

#[test]
fn an_empty_pad_says_nothing_was_drawn() {
    assert_eq!(mnist_style(&vec![0.0; PAD * PAD], PAD, PAD), Err(DrawingError::Blank));
    // Faint fuzz below the ink threshold is not a drawing either.
    assert_eq!(mnist_style(&vec![0.01; PAD * PAD], PAD, PAD), Err(DrawingError::Blank));
    let message = DrawingError::Blank.to_string();
    assert!(message.contains("nothing drawn"));
}

#[test]
fn a_pad_of_the_wrong_size_is_refused() {
    let err = mnist_style(&vec![1.0; 100], PAD, PAD).unwrap_err();
    assert!(matches!(err, DrawingError::Size { got: 100, .. }));
    assert!(mnist_style(&[], 0, 0).is_err());
}
