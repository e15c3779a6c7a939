// The page's entry: builds the views, hands them to the app's logic (app/), connects each
// control to the handler that does its job, and starts the page (a backend, the training worker,
// the data index, a first model). The wasm, the device and the models live in the worker
// (worker/worker.js); this thread only draws. Nothing imports this module: what the app needs
// from here (the views, `start` for Retry) is handed down through app/state.js's connect.
//
//   app/state.js     the page's state and modes: which control works when (one table)
//   app/backend.js   WebGPU or the CPU, the worker and its Labs
//   app/model.js     the one owner of the Lab and its model: made, loaded, restored, compared
//   app/training.js  Train, Pause, Resume, Step, Reset, the loop, the hidden tab, Compare
//   app/recovery.js  a lost device or worker, Continue
//   app/weights.js   the weights copied out: model files, the checkpoint, the kept model
//   app/insight.js   the drawing, the predictors, the latent map, interpolation
//   app/keep.js      downloading, loading and keeping models
//   app/share.js     the run in the address: a link fills the form, the address follows it
//   app/offline.js   the page kept in this browser by its service worker (www/sw.js)
//
//   shared/language.js  a browser language Intl accepts, imported first, before any module reads it
//
// The other folders: views/ (every DOM lookup and canvas, driven through callbacks), lab/ (this
// thread's client of the training worker, and the CPU's pool of workers), worker/ (what runs in
// the worker), data/ (MNIST chunks, the browser's stored models), shared/ (constants, the worker
// protocol, formatters), bench/ (bench.html's script).
import './shared/language.js';
import { chooseDefaultBackend, probeWebGPU, showBackendInfo, timeBackends, watchForWebGPUModule } from './app/backend.js';
import { changeProjection, drawing, fitPredictors, interpolate, mapPick, pickEnd, setActiveEnd } from './app/insight.js';
import { offerKeptModels, onLoadModel, onSaveModel, onSavePytorch } from './app/keep.js';
import { prepare } from './app/model.js';
import { newWorker } from './app/recovery.js';
import { startOffline } from './app/offline.js';
import { changedByHand, copyLink, keepAddressInStep, openLink } from './app/share.js';
import { app, checkSettings, connect, setMode, shownErrors, trainImagesOnServer, updateControls } from './app/state.js';
import { onCompare, onPause, onReset, onResume, onStep, onTrain, onVisibilityChange } from './app/training.js';
import { chunksFor, fetchIndex, totalBytes } from './data/data.js';
import { measureCores } from './lab/cores.js';
import { MAX_WORKERS } from './lab/pool.js';
import { BACKEND_NAMES, message } from './shared/format.js';
import { LossChart } from './views/chart.js';
import { Compare } from './views/compare.js';
import { DrawingPad } from './views/draw.js';
import { InterpolationView } from './views/interp.js';
import { LatentMap } from './views/latentmap.js';
import { PredictView } from './views/predict.js';
import { View } from './views/ui.js';

// The longest the page waits for the backends' timing before it keeps itself for offline use.
const OFFLINE_AFTER_MS = 60_000;

const view = new View();
const chart = new LossChart(view.chartElement);
const predictView = new PredictView();
const pad = new DrawingPad(view.padCanvas, { onInk: () => drawing() });
const latentMap = new LatentMap(view.mapCanvas, { onPick: (x, y) => mapPick(x, y), onDigit: (i) => pickEnd(i) });
const interpView = new InterpolationView({ onActivate: (slot) => setActiveEnd(slot) });
view.onGridPick = (i) => pickEnd(i);
const compare = new Compare();
connect({ view, chart, pad, latentMap, interpView, predictView, compare, restart: () => start() });
// A link's settings go into the form before anything reads it; from then on the address follows
// the form, whoever changes it.
openLink();
view.onFieldSet = () => keepAddressInStep();

/** Start-up, and Retry after it failed: each part that succeeded is kept for the next try. */
async function start() {
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
    view.showFieldErrors(shownErrors(errors));
    keepAddressInStep();
    if (!settings) throw new Error('some settings are not valid: fix the marked fields, then press Retry');
    await prepare(settings, { fallBackToCpu: true });
    setMode('idle');
    view.setStatus('Ready: press Train, or draw a digit to see what the untrained model makes of it.');
    offerKeptModels();
    // The page is kept for offline use once it has started and the backends are timed (or a
    // minute has passed), so that neither its start nor the timing shares the network or the
    // cores with it.
    const timed = timeBackends(settings, moveToFaster);
    Promise.race([timed, new Promise((resolve) => setTimeout(resolve, OFFLINE_AFTER_MS))]).then(() => startOffline());
    watchForWebGPUModule(webgpuBuilt);
  } catch (err) {
    setMode('error');
    view.setStatus(`Could not start: ${message(err)}`, 'error', () => start());
    view.setProgress(0, 'Stopped: see the message at the top, then press Retry.');
    if (!app.gridPixels) view.showReconstructions(null, 'No test digits yet: the data did not load.');
  }
}

/**
 * WebGPU's module has arrived (`./build.sh serve` builds it behind the page): WebGPU is offered in
 * the Backend menu, and timed against the CPU as at start, unless the page is busy by then.
 */
async function webgpuBuilt() {
  chooseDefaultBackend();
  const { settings } = checkSettings();
  if (!settings) return;
  timeBackends(settings, moveToFaster);
  if (app.mode !== 'idle') app.timing?.stop('the page was busy when the WebGPU module arrived');
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
on('savePytorch', 'click', onSavePytorch);
on('loadModel', 'change', onLoadModel);
view.clearPadButton.addEventListener('click', () => pad.clear());
document.addEventListener('visibilitychange', onVisibilityChange);

view.form.addEventListener('submit', (e) => e.preventDefault());
// Errors show when a value is committed, and go away as soon as the field is fixed.
view.form.addEventListener('change', (e) => {
  changedByHand(e.target.name);
  view.showFieldErrors(shownErrors(checkSettings().errors));
  if (app.gpu) showBackendInfo(app.mode === 'training' ? app.applied?.backend : null);
  updateControls();
  keepAddressInStep();
});
view.form.addEventListener('input', (e) => {
  changedByHand(e.target.name);
  const { errors } = checkSettings();
  if (!errors[e.target.name]) view.showFieldErrors({ ...view.visibleErrors(), [e.target.name]: undefined });
  updateControls();
  keepAddressInStep();
});
view.compareSelect.addEventListener('change', () => {
  view.showCompareError('');
  keepAddressInStep();
});
view.copyLinkButton.addEventListener('click', () => copyLink());

// Anything that escapes a handler still reaches the person, in words.
window.addEventListener('unhandledrejection', (e) => view.setStatus(`Unexpected error: ${message(e.reason)}`, 'error'));
window.addEventListener('error', (e) => view.setStatus(`Unexpected error: ${message(e.error ?? e.message)}`, 'error'));

start();
