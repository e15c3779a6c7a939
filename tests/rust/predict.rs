//! Reading digits from latent codes (k-NN and a softmax classifier) and the latent map's
//! projections, on small known examples and on real MNIST codes.

use std::path::Path;

use autoencoder_lab::data::Mnist;
use autoencoder_lab::evaluate::encode_set;
use autoencoder_lab::model::ModelKind;
use autoencoder_lab::predict::{
    Codes, Evaluation, Knn, LinearClassifier, LinearConfig, MAX_PATH_POINTS, PredictError, Projection, argmax, dead_code_units,
    evaluate, interpolate, top,
};
use autoencoder_lab::train::{Trainer, TrainingConfig};
use burn::prelude::*;
use pollster::block_on;

fn close(a: &[f32], b: &[f32], tol: f32) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() <= tol)
}

/// Three tight clusters in 2-D, labelled 0, 1 and 2.
fn clusters(per_class: usize) -> Codes {
    let centers = [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)];
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for i in 0..per_class {
        for (label, (cx, cy)) in centers.iter().enumerate() {
            let jitter = (i as f32 * 0.37).sin();
            values.extend([cx + jitter, cy - jitter * 0.5]);
            labels.push(label as u8);
        }
    }
    Codes::new(2, values, labels).unwrap()
}

#[test]
fn codes_refuse_mismatched_shapes_labels_and_non_finite_numbers() {
    assert_eq!(Codes::new(2, vec![0.0; 3], vec![1, 2]), Err(PredictError::Shape { dim: 2, count: 2, expected: 4, found: 3 }));
    assert_eq!(Codes::new(1, vec![0.0], vec![10]), Err(PredictError::Label(10)));
    assert_eq!(Codes::new(1, vec![f32::NAN], vec![1]), Err(PredictError::NotFinite));
    assert_eq!(Codes::new(3, vec![], vec![]), Err(PredictError::Empty));
}

#[test]
fn a_code_number_is_dead_only_when_it_is_zero_for_every_image() {
    // Four images, four numbers: the first varies, the second is 0 (and -0) everywhere, the third
    // is 0 but for the last image, the fourth is 0 everywhere.
    let values = vec![
        0.5, 0.0, 0.0, 0.0, //
        0.0, -0.0, 0.0, 0.0, //
        1.0, 0.0, 0.0, 0.0, //
        2.0, 0.0, 1e-30, 0.0,
    ];
    let codes = Codes::new(4, values, vec![0, 1, 2, 3]).unwrap();
    assert_eq!(dead_code_units(&codes), 2);
    // A linear code's negative numbers are alive; a single image counts too.
    assert_eq!(dead_code_units(&Codes::new(3, vec![-1.0, 0.0, 3.0], vec![7]).unwrap()), 1);
    assert_eq!(dead_code_units(&clusters(5)), 0);
}

#[test]
fn knn_votes_for_the_nearest_cluster_and_refuses_a_code_of_the_wrong_size() {
    let knn = Knn::new(clusters(20), 5);
    let scores = knn.scores(&[9.0, 1.0]).unwrap();
    assert_eq!(argmax(&scores), 1);
    assert!((scores[1] - 1.0).abs() < 1e-3, "all five neighbours are 1s: {scores:?}");
    assert_eq!(argmax(&knn.scores(&[0.5, 9.0]).unwrap()), 2);
    assert_eq!(knn.scores(&[1.0]), Err(PredictError::CodeSize { expected: 2, found: 1 }));
}

#[test]
fn knn_breaks_a_tied_vote_towards_the_nearest_neighbour() {
    // Two neighbours, one of each digit: the nearer one (digit 7) wins.
    let train = Codes::new(1, vec![0.0, 3.0], vec![7, 4]).unwrap();
    let scores = Knn::new(train, 2).scores(&[1.0]).unwrap();
    assert_eq!(argmax(&scores), 7);
    assert_eq!(top(&scores, 2).iter().map(|t| t.0).collect::<Vec<_>>(), vec![7, 4]);
}

#[test]
fn linear_classifier_loss_falls_and_it_separates_clusters() {
    let train = clusters(50);
    let (classifier, losses) = LinearClassifier::fit(&train, LinearConfig { epochs: 8, ..LinearConfig::default() });
    assert_eq!(losses.len(), 8);
    assert!(losses[7] < losses[0] * 0.5, "loss should fall: {losses:?}");
    let eval = evaluate(&clusters(10), |c| classifier.probabilities(c)).unwrap();
    assert_eq!(eval.accuracy, 1.0, "{eval:?}");
    let p = classifier.probabilities(&[0.0, 10.0]).unwrap();
    assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
    assert_eq!(argmax(&p), 2);
}

#[test]
fn confusion_matrix_counts_each_true_and_predicted_pair() {
    let eval = Evaluation::new(&[1, 1, 2, 3], &[1, 2, 2, 3]);
    assert_eq!(eval.accuracy, 0.75);
    assert_eq!(eval.confusion[1][1], 1);
    assert_eq!(eval.confusion[1][2], 1);
    assert_eq!(eval.confusion[2][2], 1);
    assert_eq!(eval.confusion.iter().flatten().sum::<u32>(), 4);
}

#[test]
fn pca_finds_the_known_principal_axes() {
    // Spread 4 along (1, 1) and 1 along (1, -1), about the centre (1, 1).
    let points = [(2.0, 2.0), (-2.0, -2.0), (1.0, -1.0), (-1.0, 1.0)];
    let values = points.iter().flat_map(|(x, y)| [x + 1.0, y + 1.0]).collect();
    let codes = Codes::new(2, values, vec![0; 4]).unwrap();
    let pca = Projection::pca(&codes);
    let h = std::f32::consts::FRAC_1_SQRT_2;
    assert!(close(&pca.center, &[1.0, 1.0], 1e-6), "{pca:?}");
    assert!(close(&pca.components[0], &[h, h], 1e-5), "{pca:?}");
    assert!(close(&pca.components[1], &[h, -h], 1e-5) || close(&pca.components[1], &[-h, h], 1e-5), "{pca:?}");
    assert!(close(&pca.explained, &[0.8, 0.2], 1e-5), "{pca:?}");
    // (3, 3) lies 2*sqrt(2) along the first axis from the centre, and maps back exactly.
    let p = pca.project(&[3.0, 3.0]);
    assert!(close(&p, &[2.0 * std::f32::consts::SQRT_2, 0.0], 1e-5), "{p:?}");
    assert!(close(&pca.unproject(p), &[3.0, 3.0], 1e-5));
}

#[test]
fn axes_projection_keeps_two_coordinates_and_fills_the_rest_with_their_mean() {
    let codes = Codes::new(3, vec![1.0, 2.0, 3.0, 3.0, 4.0, 5.0], vec![0, 1]).unwrap();
    let axes = Projection::axes(&codes, 2, 0).unwrap();
    assert_eq!(axes.project(&[1.0, 2.0, 3.0]), [3.0, 1.0]);
    assert!(close(&axes.unproject([7.0, 8.0]), &[8.0, 3.0, 7.0], 1e-6));
    assert!(Projection::axes(&codes, 1, 1).is_err());
    assert!(Projection::axes(&codes, 0, 3).is_err());
}

#[test]
fn interpolation_runs_from_one_code_to_the_other() {
    let path = interpolate(&[0.0, 10.0], &[4.0, 2.0], 3).unwrap();
    assert_eq!(path, vec![0.0, 10.0, 2.0, 6.0, 4.0, 2.0]);
}

#[test]
fn an_interpolation_longer_than_the_cap_is_refused_with_the_cap() {
    assert_eq!(interpolate(&[0.0], &[1.0], MAX_PATH_POINTS).unwrap().len(), MAX_PATH_POINTS);
    let err = interpolate(&[0.0], &[1.0], MAX_PATH_POINTS + 1).unwrap_err();
    assert_eq!(err, PredictError::TooManyPoints { asked: MAX_PATH_POINTS + 1, max: MAX_PATH_POINTS });
    assert!(err.to_string().contains(&MAX_PATH_POINTS.to_string()), "{err}");
    assert!(interpolate(&[0.0], &[1.0], u32::MAX as usize).is_err(), "a count from the page's u32 is refused, not allocated");
}

#[test]
fn codes_of_a_briefly_trained_conv_model_predict_real_digits_far_above_chance() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/mnist"));
    let mnist = Mnist::load(dir).unwrap();
    let train = mnist.train.take(2000);
    let test = mnist.test.take(500);
    let device = Device::flex();
    let config = TrainingConfig { learning_rate: 3e-3, ..TrainingConfig::new(ModelKind::Conv) };
    let mut trainer = Trainer::new(config, &device, train.len()).unwrap();
    block_on(trainer.run(&train, 60)).unwrap();
    let model = block_on(trainer.inference_model()).unwrap();
    let train_codes = block_on(encode_set(&model, &train, 500, &device)).unwrap();
    let test_codes = block_on(encode_set(&model, &test, 500, &device)).unwrap();
    assert_eq!(train_codes.dim(), 64);

    let knn = Knn::new(train_codes.clone(), 5);
    let knn_eval = evaluate(&test_codes, |c| knn.scores(c)).unwrap();
    let (linear, losses) = LinearClassifier::fit(&train_codes, LinearConfig::default());
    let linear_eval = evaluate(&test_codes, |c| linear.probabilities(c)).unwrap();
    // Chance is 10%; even 60 steps of training give codes that sort most digits.
    assert!(knn_eval.accuracy > 0.6, "k-NN accuracy {}", knn_eval.accuracy);
    assert!(linear_eval.accuracy > 0.6, "linear accuracy {}", linear_eval.accuracy);
    assert!(losses.last().unwrap() < &losses[0], "{losses:?}");
    assert_eq!(knn_eval.confusion.iter().flatten().sum::<u32>(), 500);
}
