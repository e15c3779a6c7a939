// The MNIST image geometry, defined once for every module of the page.
export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE; // 784

// Test images 0..15 are the fixed digits of the reconstruction grid.
export const GRID_DIGITS = 16;

// Training subsets the page offers (images, a whole number of 1,000-image chunks each).
export const SUBSET_SIZES = [1000, 5000, 10000, 60000];

// Test images loaded for test MSE and the grid: test chunk 0.
export const TEST_IMAGES = 1000;

// The predictors learn from at most this many training codes: enough for a stable accuracy, few
// enough that encoding them stays quick on a software GPU. k-NN votes among the K nearest; the
// linear classifier trains for LINEAR_EPOCHS passes over the codes.
export const PREDICT_TRAIN = 5000;
export const KNN_K = 5;
export const LINEAR_EPOCHS = 10;
