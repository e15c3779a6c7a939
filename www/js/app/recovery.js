// A lost GPU device or a crashed worker: the weights copied out of the worker while training
// (the checkpoint), what the page says when the worker is gone, and Continue, which starts a new
// worker on those weights.
import { BACKEND_NAMES, createLab, showBackendInfo, startWorker } from './backend.js';
import { drawing, forgetOldModel } from './insight.js';
import { modelBytes } from './keep.js';
import { WorkerGone } from '../lab/labworker.js';
import { entriesFor, loadData, refreshGrid } from './model.js';
import { app, chart, message, setMode, view } from './state.js';
import { compare, startLoop } from './training.js';
import { formatNumber } from '../views/ui.js';

// While training, the weights are copied to this thread at most this often, so that a lost GPU
// device (or a crashed worker) costs at most this much training.
export const CHECKPOINT_MS = 30_000;

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

/** `bytes` (the current model's file) as the checkpoint a recovery starts from. */
export function checkpointOf(bytes) {
  const { epoch } = app.snap;
  return { bytes, steps: app.trainedSteps, epoch, settings: app.applied, loaded: app.loaded, at: performance.now() };
}

/** A new training worker for the page, with `backend`'s wasm module; when it dies, workerGone says so. */
export const newWorker = (backend) => startWorker(workerGone, backend);

/** The worker is gone: say why and what was kept, and offer to go on. */
function workerGone(worker, why) {
  if (worker !== app.worker) return;
  // A worker lost while recovering from a loss resumes as the first loss would have.
  if (app.mode !== 'lost') app.resumeAfterRecovery = app.mode === 'training';
  app.lostWhy = why;
  setMode('lost');
  compare.stop();
  const kept = app.checkpoint;
  const keptText = kept
    ? `The model as of step ${formatNumber(kept.steps)} is kept; press Continue to go on training it`
    : 'No trained weights were kept (nothing had been trained); press Continue to start again';
  // After the handlers that were waiting on the worker have failed and said so.
  setTimeout(() => {
    view.setStatus(`Training stopped: ${why}. ${keptText} in a new worker.`, 'error', () => recover(), 'Continue');
    view.setProgress(null, 'Stopped: see the message at the top.');
  }, 0);
}

/** A new worker and Lab, on the kept weights; training goes on if it was running. */
async function recover() {
  const kept = app.checkpoint;
  const settings = kept?.settings ?? app.applied;
  view.setStatus('Starting a new training worker…');
  app.modelReady = false;
  app.lab = null;
  app.labFiles = '';
  try {
    const worker = await newWorker(settings.backend);
    app.worker = worker;
    const lab = await createLab(worker, settings.backend, settings, 'WebGPU did not start again after the device was lost');
    app.lab = lab;
    app.labBackend = lab.backend;
    app.lostWhy = null;
    await loadData(lab, entriesFor(settings));
    if (kept) await lab.load(kept.bytes, settings.model, settings.batchSize, settings.learningRate, settings.seed);
    else await lab.reset(settings.model, settings.batchSize, settings.learningRate, settings.seed, 0, settings.codeActivation);
    app.snap = lab.snap;
    const steps = kept?.steps ?? 0;
    // The curve goes back to where the kept weights were; the steps after them are gone.
    chart.truncate(steps);
    Object.assign(app, { applied: { ...settings, backend: lab.backend }, modelReady: true, trainedSteps: steps, msPerStep: null });
    app.loaded = kept?.loaded ?? null;
    app.checkpoint = kept ? { ...kept, settings: app.applied, at: performance.now() } : null;
    forgetOldModel();
    await refreshGrid();
    drawing();
    showBackendInfo(lab.backend);
    const where = `on ${BACKEND_NAMES[lab.backend]} from the weights of step ${formatNumber(steps)} (Adam's running averages and the epoch count start again)`;
    setMode('busy', { leavingLost: true });
    if (app.resumeAfterRecovery && steps > 0) {
      startLoop(Math.max(1, app.targetEpochs - kept.epoch));
      view.setStatus(`Training goes on ${where}.`);
    } else {
      setMode('idle');
      view.setStatus(`Ready again ${where}.`);
    }
  } catch (err) {
    app.lostWhy ??= message(err);
    view.setStatus(`Could not start a new worker: ${message(err)}`, 'error', () => recover(), 'Continue');
    setMode('lost', { leavingLost: true });
  }
}
