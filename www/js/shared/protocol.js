// The Lab methods the page calls through the training worker, named once: labworker.js gives
// RemoteLab a method of each name, and worker.js calls the wasm Lab's method of that name (or
// reads its getter) with the same arguments. Arguments and results are the wasm export's
// (src/web/), except that a wasm-bindgen object comes back as a plain copy of its getters, and
// that RemoteLab's reset and load take the model's settings as one object (lab/labworker.js).
export const LAB_METHODS = [
  'addData', // (split, chunk bytes) -> images added
  'clearData', // ()
  'reset', // (model, batchSize, learningRate, seed, latent, codeActivation) a fresh model; codeActivation 'linear' | 'relu' | '' (the model's default)
  'load', // (file bytes, model, batchSize, learningRate, seed, codeActivation) -> the file's training summary (JSON); the lab's model file says its code's activation and model, a PyTorch safetensors file its model (its summary: { imported: what was read and assumed }), codeActivation answering for a dense code where its metadata does not
  'save', // (summary JSON) -> the model file's bytes
  'savePytorch', // () -> the model as a PyTorch state_dict in safetensors
  'step', // (steps) -> Float32Array of up to `steps` losses, never past an epoch's end
  'evaluate', // () -> { testMse, deadCodeUnits } from one pass over the test images
  'deadCodeUnits', // () -> how many code numbers are 0 for every loaded test image
  'testPixels', // (start, count) -> Float32Array count * 784
  'testLabels', // (start, count) -> Uint8Array
  'reconstruct', // (pixels) -> Float32Array
  'read', // (pixels of one digit) -> { reconstruction, knn, linear, x, y }
  'fitPredictors', // (maxTrain, k, linearEpochs) -> { knnAccuracy, linearAccuracy, deadCodeUnits, ..., knnConfusion, linearConfusion }
  'setProjection', // ('pca' | 'axes', x, y)
  'mapPoints', // () -> Float32Array [x0, y0, x1, y1, ...] of every test digit
  'mapExplained', // getter: Float32Array, each map axis's share of the variance (PCA)
  'decodePoint', // (x, y) on the map -> Float32Array(784)
  'interpolate', // (test digit a, test digit b, points) -> Float32Array points * 784
];

// Worker commands that are not Lab methods: init(module) and create(backend), prepareDrawing(ink,
// width, height) with no Lab; free(), memory(), joinPool(part, parts, peers, ports) and
// stepPooled(steps) of one Lab (a worker pool's: pool.js and poolstep.js).

// What a worker pool (pool.js) sends to every worker's Lab, so that all hold the same model and
// training images; every other method asks the lead worker's Lab alone. (Test images go to the
// lead alone too: only it evaluates.)
export const POOLED_METHODS = new Set(['addData', 'clearData', 'reset', 'load']);
