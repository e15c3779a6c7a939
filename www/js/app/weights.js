// Copies of the model's weights out of the worker, as model files: the checkpoint a lost worker
// is recovered from (app/recovery.js), and the finished model kept in this browser, offered on the
// next visit (app/keep.js). Both are read here, so that neither module needs the other.
import { keepModel } from '../data/store.js';
import { WorkerGone } from '../lab/labworker.js';
import { message } from '../shared/format.js';
import { app, page } from './state.js';

// While training, the weights are copied to this thread at most this often, so that a lost GPU
// device (or a crashed worker) costs at most this much training.
export const CHECKPOINT_MS = 30_000;

/** How the current model was trained: the model file's summary. */
function trainingSummary() {
  return {
    steps: app.trainedSteps,
    epochs: app.snap?.epoch ?? 0,
    train_images: app.snap?.trainCount ?? 0,
    batch_size: app.applied?.batchSize,
    learning_rate: app.applied?.learningRate,
    seed: app.applied?.seed,
    backend: app.labBackend,
    test_mse: app.lastTestMse,
    smoothed_train_loss: page.chart.latestSmoothed,
    saved_by: 'page',
  };
}

/** The current model as a model file, with how it was trained. */
export async function modelBytes() {
  return app.lab.save(JSON.stringify(trainingSummary()));
}

/** The current model as a PyTorch state_dict in safetensors (no training summary: it has no place there). */
export async function pytorchBytes() {
  return app.lab.savePytorch();
}

/** `bytes` (the current model's file) as the checkpoint a recovery starts from. */
function checkpointOf(bytes) {
  const { epoch } = app.snap;
  return { bytes, steps: app.trainedSteps, epoch, settings: app.applied, loaded: app.loaded, at: performance.now() };
}

/** Copies the weights out of the worker, unless the model has not changed since the last copy. */
export async function takeCheckpoint() {
  if (!app.modelReady) return;
  if (app.checkpoint?.steps === app.trainedSteps && app.checkpoint.settings === app.applied) {
    app.checkpoint.at = performance.now();
    return;
  }
  try {
    app.checkpoint = checkpointOf(await modelBytes());
  } catch (err) {
    if (err instanceof WorkerGone) return;
    // Not fatal: the next checkpoint tries again.
    if (app.checkpoint) app.checkpoint.at = performance.now();
  }
}

/** The finished model stays in this browser, offered on the next visit. */
export async function keepInBrowser() {
  try {
    const bytes = await modelBytes();
    // The same read serves as the checkpoint, which the loop would otherwise read again next.
    app.checkpoint = checkpointOf(bytes);
    await keepModel(app.snap.model, bytes, trainingSummary());
  } catch (err) {
    // Keeping is a convenience: say why it did not happen, but do not stop anything.
    page.view.setKeepStatus(`This browser did not keep the model: ${message(err)}`);
  }
}
