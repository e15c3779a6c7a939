//! Real MNIST digits for the tests, and a `Lab` holding them as the page's worker loads them.

use autoencoder_lab::data::MnistSet;
use autoencoder_lab::web::Lab;

/// The first `n` real MNIST test digits, compiled into the test module (the browser has no files).
pub fn test_digits(n: usize) -> MnistSet {
    let images = include_bytes!("../../../data/mnist/t10k-images-idx3-ubyte.gz");
    let labels = include_bytes!("../../../data/mnist/t10k-labels-idx1-ubyte.gz");
    MnistSet::from_idx(images, "t10k images", labels, "t10k labels").expect("the MNIST test files parse").take(n)
}

/// A `Lab` on `backend` (`"webgpu"` or `"cpu"`) holding `n` test digits as its training and test
/// images, handed over as the page hands them: one chunk each.
pub async fn lab_with_digits(backend: &str, n: usize) -> Lab {
    let mut lab = Lab::create(backend.to_string()).await.unwrap_or_else(|e| panic!("a {backend} Lab: {e:?}"));
    let chunk = test_digits(n).to_chunk();
    assert_eq!(lab.add_data("train", &chunk).unwrap(), n as u32);
    assert_eq!(lab.add_data("test", &chunk).unwrap(), n as u32);
    lab
}
