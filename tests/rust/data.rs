//! The MNIST reader: real files, page chunks, and each way a file can be wrong.

use std::path::Path;

use autoencoder_lab::data::{DataError, IMAGE_PIXELS, Mnist, MnistSet, epoch_order};

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"))
}

fn real() -> Mnist {
    Mnist::load(data_dir()).expect("the MNIST files should be in data/mnist")
}

/// An images IDX record followed by nothing, built by hand.
fn images_idx(count: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0803u32, count, rows, cols] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.resize(out.len() + pixels, 7);
    out
}

fn labels_idx(count: u32, labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [0x0801u32, count] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    out.extend_from_slice(labels);
    out
}

#[test]
fn reads_the_real_files_with_their_published_counts_and_first_labels() {
    let mnist = real();
    assert_eq!(mnist.train.len(), 60_000);
    assert_eq!(mnist.test.len(), 10_000);
    assert_eq!(&mnist.train.labels()[..10], &[5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
    assert_eq!(&mnist.test.labels()[..10], &[7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
    assert_eq!(mnist.train.image(0).len(), IMAGE_PIXELS);
    // Digits are white ink on black: corners are empty, the middle is not.
    let first = mnist.train.image(0);
    assert_eq!(first[0], 0);
    assert!(first.contains(&255));
}

#[test]
fn pixels_are_the_bytes_over_255_in_the_order_asked() {
    let test = real().test;
    let indices = [9_999, 0, 4, 0];
    let pixels = test.pixels_f32(indices);
    assert_eq!(pixels.len(), indices.len() * IMAGE_PIXELS);
    let expected: Vec<f32> = indices.iter().flat_map(|&i| test.image(i).iter().map(|&p| f32::from(p) / 255.0)).collect();
    // Bit for bit: the table holds exactly the quotients.
    assert!(pixels.iter().zip(&expected).all(|(a, b)| a.to_bits() == b.to_bits()));
    assert!(pixels.contains(&1.0) && pixels.iter().any(|&p| p > 0.0 && p < 1.0));
}

#[test]
fn missing_file_names_the_file_and_the_fix() {
    let err = Mnist::load(Path::new("/nonexistent/mnist")).unwrap_err();
    assert!(matches!(err, DataError::Io { .. }), "{err}");
    let message = err.to_string();
    assert!(message.contains("train-images-idx3-ubyte.gz"), "{message}");
    assert!(message.contains("data/mnist"), "{message}");
}

#[test]
fn truncated_images_are_refused_with_sizes() {
    let images = images_idx(2, 28, 28, IMAGE_PIXELS + 100);
    let err = MnistSet::from_idx(&images, "imgs", &labels_idx(2, &[1, 2]), "lbls").unwrap_err();
    match err {
        DataError::Truncated { needed, available, ref source_name, .. } => {
            assert_eq!(source_name, "imgs");
            assert_eq!(needed, 16 + 2 * IMAGE_PIXELS);
            assert_eq!(available, 16 + IMAGE_PIXELS + 100);
        }
        other => panic!("expected Truncated, got {other}"),
    }
}

#[test]
fn truncated_gzip_is_refused() {
    let bytes = std::fs::read(data_dir().join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let cut = &bytes[..bytes.len() / 2];
    let images = std::fs::read(data_dir().join("t10k-images-idx3-ubyte.gz")).unwrap();
    let err = MnistSet::from_idx(&images, "imgs", cut, "t10k-labels").unwrap_err();
    assert!(matches!(err, DataError::Gzip { .. }), "{err}");
    assert!(err.to_string().contains("t10k-labels"));
}

#[test]
fn header_cut_short_is_truncated_not_a_panic() {
    let err = MnistSet::from_idx(&[0, 0, 8, 3, 0], "imgs", &labels_idx(0, &[]), "lbls").unwrap_err();
    assert!(matches!(err, DataError::Truncated { .. }), "{err}");
}

#[test]
fn wrong_magic_is_refused() {
    // Labels where images belong: magic 0x801 instead of 0x803.
    let err = MnistSet::from_idx(&labels_idx(1, &[3]), "swapped", &labels_idx(1, &[3]), "lbls").unwrap_err();
    match err {
        DataError::Magic { found, expected, .. } => assert_eq!((found, expected), (0x801, 0x803)),
        other => panic!("expected Magic, got {other}"),
    }
}

#[test]
fn wrong_image_size_is_refused() {
    let err = MnistSet::from_idx(&images_idx(1, 32, 32, 1024), "imgs", &labels_idx(1, &[3]), "lbls").unwrap_err();
    assert!(matches!(err, DataError::Dimensions { rows: 32, cols: 32, .. }), "{err}");
}

#[test]
fn images_and_labels_of_different_counts_are_refused() {
    let err = MnistSet::from_idx(&images_idx(2, 28, 28, 2 * IMAGE_PIXELS), "imgs", &labels_idx(3, &[1, 2, 3]), "lbls")
        .unwrap_err();
    assert!(matches!(err, DataError::CountMismatch { images: 2, labels: 3, .. }), "{err}");
}

#[test]
fn labels_outside_0_to_9_are_refused() {
    let err = MnistSet::from_idx(&images_idx(1, 28, 28, IMAGE_PIXELS), "imgs", &labels_idx(1, &[12]), "lbls").unwrap_err();
    assert!(matches!(err, DataError::BadLabel { label: 12, index: 0, .. }), "{err}");
}

#[test]
fn trailing_bytes_are_refused() {
    let mut images = images_idx(1, 28, 28, IMAGE_PIXELS);
    images.push(0);
    let err = MnistSet::from_idx(&images, "imgs", &labels_idx(1, &[1]), "lbls").unwrap_err();
    assert!(matches!(err, DataError::Trailing { trailing: 1, .. }), "{err}");
}

#[test]
fn absurd_counts_are_refused_before_allocating() {
    let err = MnistSet::from_idx(&images_idx(u32::MAX, 28, 28, 0), "imgs", &labels_idx(0, &[]), "lbls").unwrap_err();
    assert!(matches!(err, DataError::TooMany { .. }), "{err}");
}

#[test]
fn page_chunks_round_trip_and_corruption_is_caught() {
    let test = real().test;
    let subset = test.range(1000, 1000);
    let chunk = subset.to_chunk();
    assert!(chunk.len() < 300_000, "a chunk should compress well, got {} bytes", chunk.len());
    let back = MnistSet::from_chunk(&chunk, "chunk").unwrap();
    assert_eq!(back, subset);

    let mut corrupted = chunk.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    assert!(MnistSet::from_chunk(&corrupted, "chunk").is_err());
    assert!(MnistSet::from_chunk(&chunk[..chunk.len() - 10], "chunk").is_err());
    assert!(MnistSet::from_chunk(b"<!doctype html>", "chunk").is_err());
}

#[test]
fn shuffles_are_permutations_reproducible_per_seed_and_epoch() {
    let a = epoch_order(1000, 7, 0);
    let mut sorted = a.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
    assert_eq!(a, epoch_order(1000, 7, 0));
    assert_ne!(a, epoch_order(1000, 7, 1));
    assert_ne!(a, epoch_order(1000, 8, 0));
}

#[test]
fn mean_image_is_what_a_model_that_learned_nothing_would_output() {
    let train = real().train;
    let mean = train.mean_image();
    assert_eq!(mean.len(), IMAGE_PIXELS);
    // Corners are always blank; the centre is inked in a good share of digits.
    assert_eq!(mean[0], 0.0);
    assert!(mean[14 * 28 + 14] > 0.3);
}
