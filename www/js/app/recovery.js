// A lost GPU device or a crashed worker: what the page says when the worker is gone, and
// Continue, which starts a new worker on the weights copied out while training (the checkpoint,
// app/weights.js).
import { BACKEND_NAMES, formatNumber, message } from '../shared/format.js';
import { showBackendInfo, startWorker } from './backend.js';
import { dropLab, restoreModel } from './model.js';
import { app, page, setMode } from './state.js';
import { startLoop } from './training.js';

/** A new training worker for the page, with `backend`'s wasm module; when it dies, workerGone says so. */
export const newWorker = (backend) => startWorker(workerGone, backend);

/** The worker is gone: say why and what was kept, and offer to go on. */
function workerGone(worker, why) {
  if (worker !== app.worker) return;
  // A worker lost while recovering from a loss resumes as the first loss would have.
  if (app.mode !== 'lost') app.resumeAfterRecovery = app.mode === 'training';
  app.lostWhy = why;
  setMode('lost');
  page.compare.stop();
  const kept = app.checkpoint;
  const keptText = kept
    ? `The model as of step ${formatNumber(kept.steps)} is kept; press Continue to go on training it`
    : 'No trained weights were kept (nothing had been trained); press Continue to start again';
  // After the handlers that were waiting on the worker have failed and said so.
  setTimeout(() => {
    page.view.setStatus(`Training stopped: ${why}. ${keptText} in a new worker.`, 'error', () => recover(), 'Continue');
    page.view.setProgress(null, 'Stopped: see the message at the top.');
  }, 0);
}

/** A new worker and Lab, on the kept weights; training goes on if it was running. */
async function recover() {
  const kept = app.checkpoint;
  const settings = kept?.settings ?? app.applied;
  page.view.setStatus('Starting a new training worker…');
  dropLab();
  try {
    const worker = await newWorker(settings.backend);
    await restoreModel(worker, settings, kept, 'WebGPU did not start again after the device was lost');
    const backend = app.lab.backend;
    const steps = app.trainedSteps;
    app.checkpoint = kept ? { ...kept, settings: app.applied, at: performance.now() } : null;
    showBackendInfo(backend);
    const where = `on ${BACKEND_NAMES[backend]} from the weights of step ${formatNumber(steps)} (Adam's running averages and the epoch count start again)`;
    setMode('busy', { leavingLost: true });
    if (app.resumeAfterRecovery && steps > 0) {
      startLoop(Math.max(1, app.targetEpochs - kept.epoch));
      page.view.setStatus(`Training goes on ${where}.`);
    } else {
      setMode('idle');
      page.view.setStatus(`Ready again ${where}.`);
    }
  } catch (err) {
    app.lostWhy ??= message(err);
    page.view.setStatus(`Could not start a new worker: ${message(err)}`, 'error', () => recover(), 'Continue');
    setMode('lost', { leavingLost: true });
  }
}
