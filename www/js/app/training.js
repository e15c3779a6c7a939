// The training run: Train, Pause, Resume, Step, Reset, the loop that asks the worker for a few
// steps at a time and shows them, the hidden-tab policy, and the side-by-side compare run.
import { smoothMsPerStep, stepsPerCall } from '../lab/callsize.js';
import { WorkerGone } from '../lab/labworker.js';
import { formatDuration, formatLoss, formatNumber, message } from '../shared/format.js';
import { codeIsDead, knowDeadCode } from './codefacts.js';
import { accuracies, fitAndMap } from './insight.js';
import { entriesFor, fetchChunks, labWithModel, prepare, refreshGrid } from './model.js';
import { app, can, countRun, page, readSettings, setMode, updateControls } from './state.js';
import { CHECKPOINT_MS, keepInBrowser, takeCheckpoint } from './weights.js';

// Reconstructing the grid costs GPU time that training could use: refresh it every ~2 s at most.
const GRID_REFRESH_MS = 2000;

let loop = null; // the running training loop's promise

export async function onTrain() {
  if (!can('train')) return; // a second click while starting does nothing
  const settings = readSettings();
  if (!settings) return;
  countRun();
  if (await freshModel(settings, 'Could not start training', onTrain)) startLoop(settings.epochs);
}

// Stops any running loop and makes the model `settings` describe. On failure it says why, offers
// `retry` (or the page's start-up, page.restart, when no model is left), and returns false.
async function freshModel(settings, failure, retry) {
  setMode('busy');
  await stopLoop();
  try {
    await prepare(settings);
    return true;
  } catch (err) {
    setMode(app.modelReady ? 'idle' : 'error');
    page.view.setStatus(`${failure}: ${message(err)}`, 'error', app.modelReady ? retry : page.restart);
    return false;
  }
}

export function onPause() {
  if (!can('pause')) return;
  setMode('paused');
  page.view.setStatus('Paused: the current batch finishes, then training waits for Resume.');
}

export function onResume() {
  if (!can('resume')) return;
  const settings = readSettings();
  if (!settings) return;
  startLoop(settings.epochs);
}

export async function onStep() {
  if (!can('step')) return;
  const previous = app.mode;
  setMode('busy');
  await stopLoop();
  try {
    await trainSteps(1);
    await showLatestModel();
    page.view.setStatus(`Trained one batch (step ${formatNumber(app.trainedSteps)}).`);
  } catch (err) {
    page.view.setStatus(`The step failed: ${message(err)}`, 'error');
  }
  setMode(previous);
}

export async function onReset() {
  if (!can('reset') || !app.worker) return;
  const settings = readSettings();
  if (!settings) return;
  if (!(await freshModel(settings, 'Could not reset', onReset))) return;
  setMode('idle');
  page.view.setStatus('A fresh, untrained model: press Train.');
}

/** Trains on to `epochs` epochs; the mode is 'training' until the loop stops. */
export function startLoop(epochs) {
  app.targetEpochs = epochs;
  setMode('training');
  page.view.setStatus(
    app.trainedSteps === 0 && app.applied.backend === 'webgpu'
      ? 'Training. The first step compiles the GPU kernels: seconds on a GPU, up to a minute or more on a software one.'
      : 'Training…',
  );
  // A loop still finishing its last call after Pause just carries on.
  loop ??= trainLoop().finally(() => {
    loop = null;
  });
}

/** Ends the training loop (if any) after its current call. */
export async function stopLoop() {
  if (app.mode === 'training') setMode('busy');
  await loop;
}

async function trainLoop() {
  // Resume can come while the last lines below still run: then go round again.
  do {
    await trainUntilStopped();
    if (app.lostWhy) return;
    await takeCheckpoint();
    await refreshMemory();
    if (app.mode === 'paused' && !app.pausedWhenHidden) {
      page.view.setStatus(`Paused after step ${formatNumber(app.trainedSteps)}: Resume goes on, Step trains one batch.`);
    }
    updateControls();
    showTrainingProgress();
    await showLatestModel().catch((err) => page.view.setStatus(`Could not reconstruct: ${message(err)}`, 'error'));
  } while (app.mode === 'training' && app.snap.epoch < app.targetEpochs);
  updateControls();
}

async function trainUntilStopped() {
  let k = 1;
  try {
    while (app.mode === 'training' && app.snap.epoch < app.targetEpochs) {
      await trainSteps(k);
      // Aim each call at callsize.js's length, from the smoothed cost of one step.
      if (app.msPerStep) k = stepsPerCall(app.msPerStep, app.snap.backend, { previous: k });
      if (app.mode === 'training') showTrainingProgress();
      if (performance.now() - (app.checkpoint?.at ?? 0) > CHECKPOINT_MS) {
        await takeCheckpoint();
        await refreshMemory();
      }
    }
    if (app.mode === 'training') {
      // The run is over: the predictors, the map and the interpolation fill in before the page
      // says Done, so that nothing waits for a button.
      setMode('busy');
      // The progress line says the run is over before the status does: it still read "batch 0
      // of 32 · about 0 s left" from the last step when the status already said Done.
      showTrainingProgress();
      page.view.setStatus('Reading digits from the codes: fitting the predictors and drawing the latent map…');
      const report = await fitAndMap();
      if (app.lostWhy) return; // the worker went during the fit: recovery says so
      setMode('idle');
      page.view.setStatus(doneText(report));
      await keepInBrowser();
    }
  } catch (err) {
    if (err instanceof WorkerGone) return; // workerGone() has said so and offers to continue
    if (app.mode === 'training' || app.mode === 'paused') setMode('idle');
    page.view.setStatus(`Training stopped: ${message(err)}`, 'error');
  }
}

/** "Done: 2 epochs, 626 steps, test MSE 0.0185. Predictors: ...", and a dead code said plainly. */
function doneText(report) {
  const epochs = app.snap.epoch;
  const test = app.lastTestMse === null ? '' : `, test MSE ${formatLoss(app.lastTestMse)}`;
  return (
    `Done: ${epochs} epoch${epochs === 1 ? '' : 's'}, ${formatNumber(app.trainedSteps)} steps${test}.` +
    (report ? ` Predictors on the test digits: ${accuracies(report)}.` : '') +
    (codeIsDead() ? ' Every code number is dead, so the model can only output the average digit: see the facts.' : '')
  );
}

/** After training stops, the grid and the drawing show the model as it now is. */
async function showLatestModel() {
  if (app.gridStep !== app.trainedSteps) await refreshGrid();
}

/**
 * Trains up to k batches (never past the end of an epoch), plots them, and at an epoch's end
 * measures the test MSE. Returns the number of steps done.
 */
async function trainSteps(k) {
  const lab = app.lab;
  const epochBefore = app.snap.epoch;
  const losses = await lab.step(k);
  // Timed in the worker: waiting for a grid or drawing reconstruction is not training time.
  const ms = lab.lastMs / Math.max(1, losses.length);
  app.snap = lab.snap;
  // The first call compiles kernels: leave it out of the speed estimate.
  if (app.trainedSteps > 0) app.msPerStep = smoothMsPerStep(app.msPerStep, ms);
  app.dispatchesPerStep = lab.backend === 'webgpu' && losses.length ? Math.round(lab.lastGpu.dispatches / losses.length) : null;
  app.trainedSteps += losses.length;
  page.chart.addLosses(losses);
  page.view.setLatestLoss(page.chart.latestSmoothed);

  const snap = app.snap;
  if (snap.epoch > epochBefore) {
    page.view.setProgress(null, `Epoch ${snap.epoch} done: measuring the test MSE on ${formatNumber(snap.testCount)} images…`);
    // One pass over the test images gives both figures.
    const { testMse, deadCodeUnits } = await lab.evaluate();
    app.lastTestMse = testMse;
    page.chart.addTestPoint(page.chart.steps, snap.epoch, testMse);
    page.view.setLatestTest(testMse);
    knowDeadCode(deadCodeUnits);
    await refreshGrid();
  } else if (!document.hidden && performance.now() - app.lastGridAt > Math.max(GRID_REFRESH_MS, 5 * app.gridMs)) {
    // Nobody sees the grid in a hidden tab: its time goes to training until the tab is back.
    await refreshGrid();
  }
  return losses.length;
}

function showTrainingProgress() {
  const snap = app.snap;
  if (!snap || !app.modelReady) return;
  const batchSize = app.applied.batchSize;
  const B = snap.batchesPerEpoch;
  const E = Math.max(app.targetEpochs, snap.epoch + (snap.batch > 0 ? 1 : 0), 1);
  const current = Math.min(snap.epoch + 1, E);
  const done = snap.epoch * B + snap.batch;
  const total = E * B;
  const parts = [`Epoch ${current} of ${E}`, `batch ${snap.batch} of ${B}`];
  if (app.msPerStep) {
    const workers = app.lab?.workers ?? 1;
    parts.push(`${formatNumber(Math.round((1000 * batchSize) / app.msPerStep))} images/s${workers > 1 ? ` on ${workers} workers` : ''}`);
    // What decides WebGPU's speed: each dispatch costs tens of microseconds on a GPU, about a
    // millisecond on a software adapter.
    if (app.dispatchesPerStep) parts.push(`${formatNumber(app.dispatchesPerStep)} GPU dispatches a step`);
    if (app.mode === 'training') parts.push(`about ${formatDuration(((total - done) * app.msPerStep) / 1000)} left`);
  }
  if (app.mode !== 'training' && done >= total) parts.splice(0, 2, `${snap.epoch} epoch${snap.epoch === 1 ? '' : 's'} done`);
  page.view.setProgress(done / total, parts.join(' · '));
}

// Training in the worker goes on in a hidden tab (the browser throttles timers, not the worker's
// messages), unless the person asked for a pause; then it picks up again when the tab is back.
// Either way one call at a time is in flight, so nothing piles up while nobody looks.
export function onVisibilityChange() {
  if (document.hidden) {
    if (app.mode === 'training' && !page.view.trainWhileHidden) {
      onPause();
      app.pausedWhenHidden = true;
      page.view.setStatus('Paused while this tab is hidden; training picks up when you come back.');
    }
  } else if (app.pausedWhenHidden) {
    app.pausedWhenHidden = false;
    if (app.mode === 'paused') onResume();
  }
}

/** Memory figures for the leak check (data attributes) and for the curious. */
async function refreshMemory() {
  if (!app.lab || !app.modelReady) return;
  try {
    const steps = app.trainedSteps;
    const { gpu, heapBytes, wasmBytes } = await app.lab.memory();
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    page.view.setMemory(
      `Memory: wasm heap ${mb(heapBytes)} in use of ${mb(wasmBytes)}` +
        (gpu ? ` · GPU pool ${mb(gpu.bytesInUse)} in use, ${mb(gpu.bytesReserved)} reserved, ${formatNumber(gpu.allocations)} buffers` : ''),
      {
        steps: String(steps),
        heapBytes: String(heapBytes),
        wasmBytes: String(wasmBytes),
        gpuInUse: gpu ? String(gpu.bytesInUse) : '',
        gpuReserved: gpu ? String(gpu.bytesReserved) : '',
      },
    );
  } catch {
    // Only a figure for the curious: a failure here is reported by the call that matters.
  }
}

/** Trains both models side by side on the same batches (views/compare.js), in Labs of their own. */
export async function onCompare() {
  if (!can('compare')) return;
  const settings = readSettings();
  if (!settings) return;
  const choice = page.view.compareChoice;
  setMode('busy');
  await stopLoop();
  setMode('comparing');
  try {
    const entries = entriesFor(settings);
    await fetchChunks(entries);
    // The conv model's code has its own activation (''): the choice is the dense model's.
    const makeLab = (model) =>
      labWithModel(entries, { ...settings, model, codeActivation: model === 'dense' ? choice.denseActivation : '' }, {
        latent: choice.latent,
      });
    const [dense, conv] = await page.compare.run({ settings, choice, makeLab, say: (t) => page.view.setStatus(t) });
    page.view.setStatus(
      `Compared after ${formatNumber(dense.steps)} steps each: test MSE dense ${formatLoss(dense.testMse)}, conv ${formatLoss(conv.testMse)}.`,
    );
  } catch (err) {
    if (err instanceof WorkerGone) return;
    page.view.setStatus(`The comparison stopped: ${message(err)}`, 'error');
  }
  setMode(app.modelReady ? 'idle' : 'error');
}
