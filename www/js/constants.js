// The MNIST image geometry, defined once for every module of the page.
export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE; // 784

// Test images 0..15 are the fixed digits of the reconstruction grid.
export const GRID_DIGITS = 16;

// Training subsets the page offers (images, a whole number of 1,000-image chunks each).
export const SUBSET_SIZES = [1000, 5000, 10000, 60000];

// Test images loaded for test MSE and the grid: test chunk 0.
export const TEST_IMAGES = 1000;
