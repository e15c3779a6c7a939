// Wires the page together: starts it (a backend, the training worker, the data index, a first
// model) and connects each control to the module that does its job. The wasm, the device and
// the models live in the worker (worker.js); this thread only draws.
//
//   state.js     the page's state and modes: which control works when (one table)
//   backend.js   WebGPU or the CPU, the worker and its Labs
//   model.js     making a model: data, a fresh or loaded model, the reconstruction grid
//   training.js  Train, Pause, Resume, Step, Reset, the loop, the hidden tab, Compare
//   recovery.js  checkpoints, a lost device or worker, Continue
//   insight.js   the drawing, the predictors, the latent map, interpolation
//   keep.js      downloading, loading and keeping models
//   language.js  a browser language Intl accepts, first, before any module reads it
import './language.js';
import { BACKEND_NAMES, chooseDefaultBackend, probeWebGPU, showBackendInfo, timeBackends } from './backend.js';
import { measureCores } from './cores.js';
import { chunksFor, fetchIndex, totalBytes } from './data.js';
import { changeProjection, fitPredictors, interpolate, pad } from './insight.js';
import { offerKeptModels, onLoadModel, onSaveModel } from './keep.js';
import { prepare } from './model.js';
import { MAX_WORKERS } from './pool.js';
import { newWorker } from './recovery.js';
import { app, checkSettings, message, setMode, trainImagesOnServer, updateControls, view } from './state.js';
import { compare, onCompare, onPause, onReset, onResume, onStep, onTrain, onVisibilityChange } from './training.js';

/** Start-up, and Retry after it failed: each part that succeeded is kept for the next try. */
export async function start() {
  setMode('loading');
  try {
    if (!app.gpu) {
      // Before anything else runs, so that nothing else competes with the timing.
      view.setStatus('Counting the cores…');
      await measureCores(MAX_WORKERS);
      view.setStatus('Looking for a WebGPU adapter…');
      app.gpu = await probeWebGPU();
      chooseDefaultBackend();
    }
    if (!app.worker) {
      view.setStatus('Loading the WebAssembly module…');
      app.worker = await newWorker(view.readFields().backend);
    }
    if (!app.index) {
      view.setStatus('Loading the data index…');
      app.index = await fetchIndex();
      view.labelSubsets((images) => totalBytes(chunksFor(app.index.train, images)), trainImagesOnServer());
    }
    const { settings, errors } = checkSettings();
    view.showFieldErrors(errors);
    if (!settings) throw new Error('some settings are not valid: fix the marked fields, then press Retry');
    await prepare(settings, { fallBackToCpu: true });
    setMode('idle');
    view.setStatus('Ready: press Train, or draw a digit to see what the untrained model makes of it.');
    offerKeptModels();
    timeBackends(settings, moveToFaster);
  } catch (err) {
    setMode('error');
    view.setStatus(`Could not start: ${message(err)}`, 'error', () => start());
    view.setProgress(0, 'Stopped: see the message at the top, then press Retry.');
    if (!app.gridPixels) view.showReconstructions(null, 'No test digits yet: the data did not load.');
  }
}

/**
 * Once both backends are timed: moves the page to the faster, where it is not on it yet and the
 * person has changed nothing (no step trained, no model loaded, the same model, the backend the
 * page chose); otherwise the backend line says what was measured and the model stays where it is.
 */
async function moveToFaster() {
  const { measured } = app;
  const untouched =
    app.mode === 'idle' && app.modelReady && app.trainedSteps === 0 && !app.loaded &&
    app.applied?.model === measured.model && view.readFields().backend === app.backendByPage;
  if (!untouched) {
    measured.late = true;
    showBackendInfo(app.labBackend);
    return;
  }
  chooseDefaultBackend();
  const { settings } = checkSettings();
  if (!settings || settings.backend === app.labBackend) return;
  setMode('busy');
  try {
    await prepare(settings, { fallBackToCpu: true });
    view.setStatus(`Ready on ${BACKEND_NAMES[app.labBackend]}, the faster here: press Train, or draw a digit.`);
  } catch (err) {
    view.setStatus(`Could not move to ${BACKEND_NAMES[settings.backend]}: ${message(err)}`, 'error');
  }
  setMode(app.modelReady ? 'idle' : 'error');
}

const on = (control, event, handler) => view.controls[control].addEventListener(event, handler);
on('train', 'click', onTrain);
on('pause', 'click', onPause);
on('resume', 'click', onResume);
on('step', 'click', onStep);
on('reset', 'click', onReset);
on('fitPredictors', 'click', () => fitPredictors());
on('projection', 'change', () => changeProjection());
on('interpolate', 'click', interpolate);
on('compare', 'click', onCompare);
on('compareStop', 'click', () => compare.stop());
on('saveModel', 'click', onSaveModel);
on('loadModel', 'change', onLoadModel);
view.clearPadButton.addEventListener('click', () => pad.clear());
document.addEventListener('visibilitychange', onVisibilityChange);

view.form.addEventListener('submit', (e) => e.preventDefault());
// Errors show when a value is committed, and go away as soon as the field is fixed.
view.form.addEventListener('change', () => {
  view.showFieldErrors(checkSettings().errors);
  if (app.gpu) showBackendInfo(app.mode === 'training' ? app.applied?.backend : null);
  updateControls();
});
view.form.addEventListener('input', (e) => {
  const { errors } = checkSettings();
  if (!errors[e.target.name]) view.showFieldErrors({ ...view.visibleErrors(), [e.target.name]: undefined });
  updateControls();
});

// Anything that escapes a handler still reaches the person, in words.
window.addEventListener('unhandledrejection', (e) => view.setStatus(`Unexpected error: ${message(e.reason)}`, 'error'));
window.addEventListener('error', (e) => view.setStatus(`Unexpected error: ${message(e.error ?? e.message)}`, 'error'));

start();
