// Wires the page together: finds a backend, starts the training worker, loads the data, runs the
// training loop, and keeps the chart, the reconstruction grid and the drawing pad up to date. The
// wasm, the device and the models live in the worker (worker.js); this thread only draws.
import { GRID_DIGITS, TEST_IMAGES } from './constants.js';
import { LossChart } from './chart.js';
import { Compare } from './compare.js';
import { ChunkCache, chunksFor, fetchIndex, totalBytes } from './data.js';
import { DrawingPad } from './draw.js';
import { LabWorker, WorkerGone } from './labworker.js';
import { LatentMap } from './latentmap.js';
import { PredictView } from './predict.js';
import { parseSettings, sameModelSettings } from './settings.js';
import { downloadFile, keepModel, keptModel, readFile } from './store.js';
import { View, drawDigit, formatDuration, formatLoss, formatNumber } from './ui.js';

// Each lab.step(k) call should take about this long: long enough that per-call overhead is
// small, short enough that Pause and the drawing pad answer quickly.
const TARGET_CALL_MS = 200;
const MAX_STEPS_PER_CALL = 16;
// Reconstructing the grid costs GPU time that training could use: refresh it every ~2 s at most.
const GRID_REFRESH_MS = 2000;
const ADAPTER_TIMEOUT_MS = 10000;
// Before about this many steps both models sit near "the average digit" (shared/REFERENCE.md).
const EARLY_STEPS = 300;
// The predictors learn from at most this many training codes (see compare.js).
const PREDICT_TRAIN = 5000;
const KNN_K = 5;
const LINEAR_EPOCHS = 10;
const INTERPOLATION_POINTS = 8;
// A model file here is under 1 MB; refuse anything far larger before reading it.
const MAX_MODEL_FILE = 64 * 1024 * 1024;

// While training, the weights are copied to this thread at most this often, so that a lost GPU
// device (or a crashed worker) costs at most this much training.
const CHECKPOINT_MS = 30_000;

const BACKEND_NAMES = { webgpu: 'WebGPU', cpu: 'CPU (WebAssembly)' };

const view = new View();
const chart = new LossChart(view.chartElement);
const chunks = new ChunkCache();
const predictView = new PredictView();
const latentMap = new LatentMap(document.getElementById('latent-map'), { onPick: (x, y) => mapPick.request(x, y) });
const compare = new Compare();
const $ = (id) => document.getElementById(id);

const app = {
  worker: null, // the LabWorker that holds the wasm module
  index: null, // data/index.json
  gpu: null, // what probeWebGPU found
  lab: null, // a RemoteLab in the worker
  labBackend: null,
  // The lab's counters as of its last answer.
  snap: null,
  labFiles: '', // the chunk files added to `lab`, to know when to re-add
  modelReady: false,
  applied: null, // the settings the current model was made with
  // loading | busy | idle | training | paused | comparing | error; reads 'lost' while the worker
  // is gone (see workerGone), whatever a handler still finishing sets it to.
  mode: 'loading',
  targetEpochs: 0,
  loop: null, // the running training loop's promise
  msPerStep: null, // smoothed, for images/s and time left
  lastGridAt: 0,
  gridMs: 0,
  gridPixels: null,
  gridStep: -1, // the step the grid's reconstructions show
  trainedSteps: 0, // steps since the model was made, as shown on the chart
  lastTestMse: null,
  predictorsStep: null, // the step the predictors (and the map) were fitted at; null: none
  loaded: null, // the name of the model file the current model came from, if it did
  testLabels: null,
  // The last weights copied out of the worker: { bytes, steps, settings, at }. What is left
  // when the GPU device is lost.
  checkpoint: null,
  lostWhy: null, // set while the worker is gone, until Continue
  pausedWhenHidden: false,
};

{
  let mode = app.mode;
  Object.defineProperty(app, 'mode', {
    get: () => (app.lostWhy ? 'lost' : mode),
    set: (m) => {
      mode = m;
    },
  });
}

const pad = new DrawingPad(view.padCanvas, { onInk: () => drawing.request() });

// --- start-up ------------------------------------------------------------------------------

async function start() {
  app.mode = 'loading';
  updateControls();
  try {
    if (!app.gpu) {
      view.setStatus('Looking for a WebGPU adapter…');
      app.gpu = await probeWebGPU();
      chooseDefaultBackend();
    }
    if (!app.worker) {
      view.setStatus('Loading the WebAssembly module…');
      app.worker = await startWorker();
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
    app.mode = 'idle';
    view.setStatus('Ready: press Train, or draw a digit to see what the untrained model makes of it.');
    offerKeptModels();
  } catch (err) {
    app.mode = 'error';
    view.setStatus(`Could not start: ${message(err)}`, 'error', () => start());
    view.setProgress(0, 'Stopped: see the message at the top, then press Retry.');
    if (!app.gridPixels) view.showReconstructions(null, 'No test digits yet: the data did not load.');
  }
  updateControls();
}

/** Asks for an adapter the way the wasm will, to say which GPU (if any) trains the model. */
async function probeWebGPU() {
  if (!navigator.gpu) {
    const why = window.isSecureContext
      ? 'this browser has no WebGPU'
      : 'WebGPU needs https or localhost, and this page is served over plain http';
    return { available: false, why };
  }
  try {
    const adapter = await Promise.race([
      navigator.gpu.requestAdapter(),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error('the adapter request did not answer')), ADAPTER_TIMEOUT_MS),
      ),
    ]);
    if (!adapter) return { available: false, why: 'WebGPU is there but offers no adapter (GPU or driver blocklisted?)' };
    const info = adapter.info ?? {};
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
    // SwiftShader is Chrome's CPU implementation of Vulkan: WebGPU works, but slowly.
    const software = !!info.isFallbackAdapter || /swiftshader/i.test(name);
    return { available: true, software, name };
  } catch (err) {
    return { available: false, why: `WebGPU failed: ${message(err)}` };
  }
}

/** WebGPU on a real GPU; otherwise the CPU backend, which beats a software GPU by 20-100x. */
function chooseDefaultBackend() {
  const gpu = app.gpu;
  const asked = new URLSearchParams(location.search).get('backend');
  let backend = gpu.available && !gpu.software ? 'webgpu' : 'cpu';
  if (asked === 'cpu' || (asked === 'webgpu' && gpu.available)) backend = asked;
  view.setBackendAvailable('webgpu', gpu.available, gpu.why ?? '');
  view.setField('backend', backend);
  showBackendInfo();
}

function showBackendInfo(running = null) {
  const gpu = app.gpu;
  const backend = running ?? view.readFields().backend;
  if (!gpu.available) {
    view.setBackendInfo(
      `No WebGPU here: ${gpu.why}. Use a recent Chrome or Edge, or turn WebGPU on in your browser's ` +
        'settings, for GPU training. Until then the model trains on the CPU backend (WebAssembly).',
      'warn',
    );
  } else if (gpu.software) {
    view.setBackendInfo(
      `Backend: ${BACKEND_NAMES[backend]}. The WebGPU adapter is ${gpu.name}, a software adapter (no GPU): ` +
        (backend === 'webgpu'
          ? 'training on it will be slow; the CPU backend is faster here.'
          : 'WebGPU training would be slow, so the CPU backend is used; pick WebGPU to try it anyway.'),
      'warn',
    );
  } else {
    view.setBackendInfo(`Backend: ${BACKEND_NAMES[backend]}. WebGPU adapter: ${gpu.name}.`);
  }
}

async function startWorker() {
  const worker = new LabWorker({ onGone: (why) => workerGone(worker, why) });
  try {
    await worker.init();
    return worker;
  } catch (err) {
    worker.terminate();
    throw new Error(
      `the training worker did not start: the WebAssembly package in www/pkg did not load (${message(err)}); build it with ./build.sh build`,
    );
  }
}

// --- making a model ------------------------------------------------------------------------

/**
 * Makes the page match `settings`: the backend's Lab, the subset's data (fetching only chunks
 * not cached yet), and a fresh model. Used at start-up and by Train and Reset.
 */
async function prepare(settings, { fallBackToCpu = false } = {}) {
  // Until the old model is touched, a failure (no WebGPU, a corrupt chunk) leaves it usable.
  if (!app.lab || app.labBackend !== settings.backend) {
    view.setStatus(`Starting the ${BACKEND_NAMES[settings.backend]} backend…`);
    const lab = await createLab(app.worker, settings.backend, fallBackToCpu ? 'WebGPU did not start' : null);
    settings = { ...settings, backend: lab.backend };
    const old = app.lab;
    app.modelReady = false;
    app.lab = lab;
    app.labBackend = lab.backend;
    app.labFiles = '';
    await old?.free(); // the old Lab's GPU buffers go now, not when the garbage collector gets to them
  }
  showBackendInfo(settings.backend);

  const trainEntries = chunksFor(app.index.train, settings.subset);
  const testEntries = chunksFor(app.index.test, TEST_IMAGES);
  const entries = [...testEntries, ...trainEntries];
  if (entries.some((e) => !chunks.has(e.file))) view.setStatus('Fetching MNIST…');
  await chunks.fetchAll(entries, showFetchProgress);

  const lab = app.lab;
  app.modelReady = false;
  await loadData(lab, testEntries, trainEntries);
  await lab.reset(settings.model, settings.batchSize, settings.learningRate, settings.seed, 0);
  app.snap = lab.snap;
  await modelChanged(settings, null);
}

/** Gives `lab` the chunks' images, unless it has exactly those already. */
async function loadData(lab, testEntries, trainEntries) {
  const files = [...testEntries, ...trainEntries].map((e) => e.file).join(',');
  if (app.labFiles === files && app.lab === lab) return;
  view.setStatus('Unpacking the images…');
  await lab.clearData();
  app.labFiles = '';
  await lab.addData('test', testEntries.map((e) => chunks.get(e.file)));
  await lab.addData('train', trainEntries.map((e) => chunks.get(e.file)));
  app.labFiles = files;
  app.gridPixels = await lab.testPixels(0, GRID_DIGITS);
  app.testLabels = await lab.testLabels(0, lab.snap.testCount);
  view.showOriginals(app.gridPixels, app.testLabels.subarray(0, GRID_DIGITS));
}

/**
 * A Lab on `backend` in `worker`. When WebGPU fails and `fallBack` names why, the CPU backend
 * instead (a page that cannot train is worse than one that trains slowly), said on the page.
 */
async function createLab(worker, backend, fallBack) {
  try {
    return await worker.createLab(backend);
  } catch (err) {
    if (err instanceof WorkerGone) throw err;
    if (!(fallBack && backend === 'webgpu')) throw new Error(`${BACKEND_NAMES[backend]} did not start: ${message(err)}`);
    app.gpu = { available: false, why: `${fallBack} (${message(err)})` };
    chooseDefaultBackend();
    return worker.createLab('cpu');
  }
}

/** After a fresh or loaded model: the chart, facts, grid and predictors start over. */
async function modelChanged(settings, loaded) {
  const snap = app.snap;
  app.loaded = loaded;

  app.applied = settings;
  app.modelReady = true;
  app.trainedSteps = 0;
  app.msPerStep = null;
  app.lastTestMse = null;
  chart.clear();
  view.setLatestLoss(null);
  view.setLatestTest(null);
  view.setFacts({
    model: snap.model === 'conv' ? 'convolutional' : snap.model,
    parameters: snap.parameterCount,
    latent: snap.latentSize,
    images: `${formatNumber(snap.trainCount)} train, ${formatNumber(snap.testCount)} test`,
  });
  view.setProgress(
    0,
    loaded
      ? `Loaded from ${loaded}: Resume or Step trains on from it, ${snap.batchesPerEpoch} batches of ${settings.batchSize} per epoch.`
      : `Not trained yet: ${snap.batchesPerEpoch} batches of ${settings.batchSize} per epoch.`,
  );
  forgetPredictors('Fit the predictors to read digits from this model\'s codes.');
  setProjectionChoices(snap.model, snap.latentSize);
  await refreshGrid();
  drawing.request();
  updateSettingsNote();
}

function showFetchProgress({ loadedBytes, totalBytes: total, doneChunks, totalChunks }) {
  if (totalChunks === 0) return;
  const mb = (n) => (n / 1e6).toFixed(1);
  view.setProgress(
    total ? loadedBytes / total : null,
    `Fetching data: ${doneChunks} of ${totalChunks} chunks, ${mb(loadedBytes)} of ${mb(total)} MB`,
  );
}

// --- training ------------------------------------------------------------------------------

/** The form's settings, checked against what the server has. */
function checkSettings() {
  return parseSettings(view.readFields(), { trainImages: trainImagesOnServer() });
}

function trainImagesOnServer() {
  return app.index ? app.index.train.reduce((n, e) => n + e.images, 0) : Infinity;
}

/** Checks the form; shows what is wrong next to each bad field. */
function readSettings() {
  const { settings, errors } = checkSettings();
  view.showFieldErrors(errors);
  if (!settings) view.setStatus('Some settings are not valid: see the marked fields.', 'error');
  return settings;
}

async function onTrain() {
  if (!['idle', 'paused'].includes(app.mode)) return; // a second click while starting does nothing
  const settings = readSettings();
  if (!settings) return;
  if (await freshModel(settings, 'Could not start training', onTrain)) startLoop(settings.epochs);
}

// Stops any running loop and makes the model `settings` describe. On failure it says why, offers
// `retry` (or a restart when no model is left), and returns false.
async function freshModel(settings, failure, retry) {
  app.mode = 'busy';
  updateControls();
  await stopLoop();
  try {
    await prepare(settings);
    return true;
  } catch (err) {
    app.mode = app.modelReady ? 'idle' : 'error';
    view.setStatus(`${failure}: ${message(err)}`, 'error', app.modelReady ? retry : start);
    updateControls();
    return false;
  }
}

function onPause() {
  if (app.mode !== 'training') return;
  app.mode = 'paused';
  view.setStatus('Paused: the current batch finishes, then training waits for Resume.');
  updateControls();
}

function onResume() {
  if (!canResume()) return;
  const settings = readSettings();
  if (!settings) return;
  startLoop(settings.epochs);
}

async function onStep() {
  if (!['idle', 'paused'].includes(app.mode) || !app.modelReady) return;
  const previous = app.mode;
  app.mode = 'busy';
  updateControls();
  await stopLoop();
  try {
    await trainSteps(1);
    await showLatestModel();
    view.setStatus(`Trained one batch (step ${formatNumber(app.trainedSteps)}).`);
  } catch (err) {
    view.setStatus(`The step failed: ${message(err)}`, 'error');
  }
  app.mode = previous;
  updateControls();
}

async function onReset() {
  if (!['idle', 'paused', 'training', 'error'].includes(app.mode) || !app.worker || !app.index) return;
  const settings = readSettings();
  if (!settings) return;
  if (!(await freshModel(settings, 'Could not reset', onReset))) return;
  app.mode = 'idle';
  view.setStatus('A fresh, untrained model: press Train.');
  updateControls();
}

function canResume() {
  if (app.mode === 'paused') return true;
  // After a finished run, Resume trains on to a larger epoch count on the same model.
  if (app.mode !== 'idle' || !app.modelReady || (app.trainedSteps === 0 && !app.loaded)) return false;
  const { settings } = checkSettings();
  return !!settings && sameModelSettings(settings, app.applied) && app.snap.epoch < settings.epochs;
}

function startLoop(epochs) {
  app.targetEpochs = epochs;
  app.mode = 'training';
  updateControls();
  view.setStatus(
    app.trainedSteps === 0 && app.applied.backend === 'webgpu'
      ? 'Training. The first step compiles the GPU kernels: seconds on a GPU, up to a minute or more on a software one.'
      : 'Training…',
  );
  // A loop still finishing its last call after Pause just carries on.
  app.loop ??= trainLoop().finally(() => {
    app.loop = null;
  });
}

/** Ends the training loop (if any) after its current call. */
async function stopLoop() {
  if (app.mode === 'training') app.mode = 'busy';
  await app.loop;
}

async function trainLoop() {
  // Resume can come while the last lines below still run: then go round again.
  do {
    await trainUntilStopped();
    if (app.lostWhy) return;
    await takeCheckpoint();
    await refreshMemory();
    if (app.mode === 'paused' && !app.pausedWhenHidden) {
      view.setStatus(`Paused after step ${formatNumber(app.trainedSteps)}: Resume goes on, Step trains one batch.`);
    }
    updateControls();
    showTrainingProgress();
    await showLatestModel().catch((err) => view.setStatus(`Could not reconstruct: ${message(err)}`, 'error'));
  } while (app.mode === 'training' && app.snap.epoch < app.targetEpochs);
  updateControls();
}

async function trainUntilStopped() {
  let k = 1;
  try {
    while (app.mode === 'training' && app.snap.epoch < app.targetEpochs) {
      await trainSteps(k);
      // Aim each call at TARGET_CALL_MS, from the smoothed cost of one step.
      if (app.msPerStep) {
        k = Math.max(1, Math.min(MAX_STEPS_PER_CALL, Math.round(TARGET_CALL_MS / app.msPerStep)));
      }
      if (app.mode === 'training') showTrainingProgress();
      if (performance.now() - (app.checkpoint?.at ?? 0) > CHECKPOINT_MS) {
        await takeCheckpoint();
        await refreshMemory();
      }
    }
    if (app.mode === 'training') {
      app.mode = 'idle';
      const epochs = app.snap.epoch;
      const test = app.lastTestMse === null ? '' : `, test MSE ${formatLoss(app.lastTestMse)}`;
      view.setStatus(`Done: ${epochs} epoch${epochs === 1 ? '' : 's'}, ${formatNumber(app.trainedSteps)} steps${test}.`);
      await keepInBrowser();
    }
  } catch (err) {
    if (err instanceof WorkerGone) return; // workerGone() has said so and offers to continue
    if (app.mode === 'training' || app.mode === 'paused') app.mode = 'idle';
    view.setStatus(`Training stopped: ${message(err)}`, 'error');
  }
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
  // Timed in the worker: waiting for a grid or drawing reconstruction is not training time.
  const { losses, ms: callMs } = await lab.step(k);
  const ms = callMs / Math.max(1, losses.length);
  app.snap = lab.snap;
  // The first call compiles kernels: leave it out of the speed estimate.
  if (app.trainedSteps > 0) app.msPerStep = app.msPerStep === null ? ms : 0.7 * app.msPerStep + 0.3 * ms;
  app.trainedSteps += losses.length;
  chart.addLosses(losses);
  view.setLatestLoss(chart.latestSmoothed);

  const snap = app.snap;
  if (snap.epoch > epochBefore) {
    view.setProgress(null, `Epoch ${snap.epoch} done: measuring the test MSE on ${formatNumber(snap.testCount)} images…`);
    const mse = await lab.evaluate();
    app.lastTestMse = mse;
    chart.addTestPoint(chart.steps, snap.epoch, mse);
    view.setLatestTest(mse);
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
    parts.push(`${formatNumber(Math.round((1000 * batchSize) / app.msPerStep))} images/s`);
    if (app.mode === 'training') parts.push(`about ${formatDuration(((total - done) * app.msPerStep) / 1000)} left`);
  }
  if (app.mode === 'idle' && done >= total) parts.splice(0, 2, `${snap.epoch} epoch${snap.epoch === 1 ? '' : 's'} done`);
  view.setProgress(done / total, parts.join(' · '));
}

// --- reconstructions -----------------------------------------------------------------------

async function refreshGrid() {
  const lab = app.lab;
  if (!lab || !app.gridPixels) return;
  const t0 = performance.now();
  const steps = app.trainedSteps;
  const out = await lab.reconstruct(app.gridPixels);
  app.gridMs = performance.now() - t0;
  app.lastGridAt = performance.now();
  app.gridStep = steps;
  // The drawing's reconstruction follows the model too.
  if (!pad.isEmpty) drawing.request();
  view.showReconstructions(
    out,
    steps === 0 && app.loaded
      ? `Top: test digits. Bottom: rebuilt by the model loaded from ${app.loaded}, from its ${app.snap.latentSize}-number code.`
      : steps === 0
      ? "Top: test digits. Bottom: the untrained model's output, noise until it learns to copy the top row."
      : `Top: test digits. Bottom: rebuilt from a ${app.snap.latentSize}-number code after ${formatNumber(steps)} step${steps === 1 ? '' : 's'}.` +
          // What a short run looks like (REFERENCE.md: ~300 steps only start to leave the plateau).
          (steps < EARLY_STEPS ? ' At first every digit comes back as the same blurry average digit; shapes appear after a few hundred steps.' : ''),
  );
}

/** Reconstructs the pad's drawing, at most one at a time; a newer drawing replaces a waiting one. */
const drawing = {
  running: false,
  dirty: false,
  output: null,

  request() {
    this.dirty = true;
    if (!this.running) this.run();
  },

  async run() {
    this.running = true;
    while (this.dirty) {
      this.dirty = false;
      if (pad.isEmpty || !app.worker || app.lostWhy) {
        this.output = null;
        view.showDrawing(null, null, 'draw a digit');
        predictView.showGuesses(null, 'Draw a digit to see what the predictors make of it.');
        latentMap.mark(null);
        continue;
      }
      let input;
      try {
        input = await app.worker.prepareDrawing(pad.ink(), pad.width, pad.height);
      } catch (err) {
        // prepareDrawing refuses an empty pad ("nothing drawn"): say what to do.
        this.output = null;
        view.showDrawing(null, null, /nothing drawn/i.test(message(err)) ? 'draw a digit' : message(err));
        continue;
      }
      if (this.dirty) continue; // drawn on meanwhile: take the newer ink
      view.showDrawing(input, this.output);
      try {
        if (!app.modelReady) {
          view.showDrawing(input, null, 'model loading…');
          continue;
        }
        const result = predictorsFresh()
          ? await app.lab.read(input).then((reading) => ({ output: reading.reconstruction, reading }))
          : { output: await app.lab.reconstruct(input), reading: null };
        this.output = result.output;
        if (!this.dirty && !pad.isEmpty) {
          view.showDrawing(input, result.output);
          predictView.showGuesses(result.reading, guessesWhy());
          latentMap.mark(result.reading ? [result.reading.x, result.reading.y] : null);
        }
      } catch (err) {
        if (!(err instanceof WorkerGone)) view.setStatus(`Could not reconstruct the drawing: ${message(err)}`, 'error');
      }
    }
    this.running = false;
  },
};

// --- predicting digits and the latent map ----------------------------------------------------

function predictorsFresh() {
  return app.predictorsStep !== null && app.predictorsStep === app.trainedSteps && app.modelReady;
}

function guessesWhy() {
  if (app.predictorsStep === null) return 'Fit the predictors to see guesses for your drawing.';
  if (!predictorsFresh()) return 'The model changed since the predictors were fitted: fit them again.';
  return '';
}

function forgetPredictors(caption) {
  app.predictorsStep = null;
  predictView.showReport(null, caption);
  latentMap.clear('Fit the predictors to place the test digits on the map.');
  showMapDecoded(null, 'click the map');
  $('interp-strip').replaceChildren();
  $('interp-strip').dataset.filled = 'no';
}

/** Encodes the images, fits k-NN and the linear classifier, scores them, and draws the map. */
async function fitPredictors() {
  if (!app.modelReady || !['idle', 'paused'].includes(app.mode)) return;
  const previous = app.mode;
  app.mode = 'busy';
  updateControls();
  view.setStatus('Fitting the predictors: encoding the images…');
  try {
    const lab = app.lab;
    const steps = app.trainedSteps;
    const report = await lab.fitPredictors(PREDICT_TRAIN, KNN_K, LINEAR_EPOCHS);
    app.predictorsStep = steps;
    predictView.showReport(
      report,
      `Fitted on the codes of ${formatNumber(report.trainCodes)} training digits ` +
        (app.loaded && steps === 0 ? `of the model loaded from ${app.loaded}; ` : `after ${formatNumber(steps)} steps; `) +
        `accuracy on ${formatNumber(report.testCodes)} test digits (chance is 10%).`,
    );
    $('map-projection').value = 'pca';
    await showMap();
    view.setStatus(
      `Predictors fitted: k-NN ${(100 * report.knnAccuracy).toFixed(1)}%, linear ${(100 * report.linearAccuracy).toFixed(1)}% ` +
        'on the test digits. Draw a digit to see their guesses, or click the map.',
    );
  } catch (err) {
    view.setStatus(`Could not fit the predictors: ${message(err)}`, 'error');
  }
  app.mode = previous;
  updateControls();
  drawing.request();
}

/** The map's choices: PCA always; for a small code, also each pair of its own axes. */
function setProjectionChoices(model, latent) {
  const select = $('map-projection');
  select.replaceChildren(new Option('PCA (2 main directions)', 'pca'));
  if (latent <= 4) {
    for (let a = 0; a < latent; a++) {
      for (let b = a + 1; b < latent; b++) select.append(new Option(`code numbers ${a + 1} and ${b + 1}`, `${a},${b}`));
    }
  }
}

async function changeProjection(value) {
  if (!predictorsFresh()) return;
  const [a, b] = value === 'pca' ? [0, 0] : value.split(',').map(Number);
  try {
    await app.lab.setProjection(value === 'pca' ? 'pca' : 'axes', a, b);
    await showMap();
    drawing.request();
  } catch (err) {
    view.setStatus(`Could not change the map: ${message(err)}`, 'error');
  }
}

async function showMap() {
  const value = $('map-projection').value;
  const { points, explained } = await app.lab.map();
  const axes =
    value === 'pca'
      ? [0, 1].map((i) => `principal direction ${i + 1} (${(100 * explained[i]).toFixed(0)}% of the variance)`)
      : value.split(',').map((a) => `code number ${Number(a) + 1}`);
  latentMap.show(points, app.testLabels, axes);
  showMapDecoded(null, 'click the map');
}

function showMapDecoded(pixels, caption) {
  const canvas = $('map-decoded');
  if (pixels) drawDigit(canvas, pixels, 0);
  else canvas.getContext('2d').clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.empty = pixels ? 'no' : 'yes';
  $('map-decoded-caption').textContent = pixels ? '' : caption;
  $('map-decoded-caption').hidden = !!pixels;
}

/** Decodes the picked map point; while one decode runs, only the newest pick waits. */
const mapPick = {
  running: false,
  next: null,

  request(x, y) {
    this.next = [x, y];
    if (!this.running) this.run();
  },

  async run() {
    this.running = true;
    while (this.next) {
      const [x, y] = this.next;
      this.next = null;
      if (!predictorsFresh()) {
        showMapDecoded(null, 'fit the predictors again');
        continue;
      }
      try {
        showMapDecoded(await app.lab.decodePoint(x, y));
      } catch (err) {
        view.setStatus(`Could not decode that point: ${message(err)}`, 'error');
      }
    }
    this.running = false;
  },
};

async function onInterpolate() {
  const count = app.snap?.testCount ?? 0;
  const read = (id) => {
    const t = $(id).value.trim();
    return /^\d+$/.test(t) && Number(t) < count ? Number(t) : null;
  };
  const a = read('interp-a');
  const b = read('interp-b');
  const error = $('interp-error');
  if (a === null || b === null) {
    error.textContent = `Enter two test digit numbers from 0 to ${count - 1} (the grid shows 0 to 15).`;
    return;
  }
  error.textContent = '';
  if (!predictorsFresh()) return;
  try {
    const pixels = await app.lab.interpolate(a, b, INTERPOLATION_POINTS);
    const strip = $('interp-strip');
    strip.replaceChildren();
    for (let i = 0; i < INTERPOLATION_POINTS; i++) {
      const canvas = document.createElement('canvas');
      canvas.width = 28;
      canvas.height = 28;
      canvas.className = 'tile';
      drawDigit(canvas, pixels, i * 784);
      strip.append(canvas);
    }
    strip.dataset.filled = 'yes';
  } catch (err) {
    view.setStatus(`Could not interpolate: ${message(err)}`, 'error');
  }
}

// --- a lost device, a crashed worker ------------------------------------------------------

/** Copies the weights out of the worker, unless the model has not changed since the last copy. */
async function takeCheckpoint() {
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
function checkpointOf(bytes) {
  const { epoch } = app.snap;
  return { bytes, steps: app.trainedSteps, epoch, settings: app.applied, loaded: app.loaded, at: performance.now() };
}

/** The worker is gone: say why and what was kept, and offer to go on. */
function workerGone(worker, why) {
  if (worker !== app.worker) return;
  app.resumeAfterRecovery = app.mode === 'training';
  app.lostWhy = why;
  compare.stop();
  updateControls();
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
    const worker = await startWorker();
    app.worker = worker;
    const lab = await createLab(worker, settings.backend, 'WebGPU did not start again after the device was lost');
    app.lab = lab;
    app.labBackend = lab.backend;
    app.lostWhy = null;
    await loadData(lab, chunksFor(app.index.test, TEST_IMAGES), chunksFor(app.index.train, settings.subset));
    if (kept) await lab.load(kept.bytes, settings.model, settings.batchSize, settings.learningRate, settings.seed);
    else await lab.reset(settings.model, settings.batchSize, settings.learningRate, settings.seed, 0);
    app.snap = lab.snap;
    const steps = kept?.steps ?? 0;
    // The curve goes back to where the kept weights were; the steps after them are gone.
    chart.truncate(steps);
    Object.assign(app, { applied: { ...settings, backend: lab.backend }, modelReady: true, trainedSteps: steps, msPerStep: null });
    app.loaded = kept?.loaded ?? null;
    app.checkpoint = kept ? { ...kept, settings: app.applied, at: performance.now() } : null;
    forgetPredictors('Fit the predictors to read digits from this model\'s codes.');
    await refreshGrid();
    drawing.request();
    showBackendInfo(lab.backend);
    const where = `on ${BACKEND_NAMES[lab.backend]} from the weights of step ${formatNumber(steps)} (Adam's running averages and the epoch count start again)`;
    if (app.resumeAfterRecovery && steps > 0) {
      startLoop(Math.max(1, app.targetEpochs - kept.epoch));
      view.setStatus(`Training goes on ${where}.`);
    } else {
      app.mode = 'idle';
      view.setStatus(`Ready again ${where}.`);
    }
  } catch (err) {
    app.lostWhy ??= message(err);
    view.setStatus(`Could not start a new worker: ${message(err)}`, 'error', () => recover(), 'Continue');
  }
  updateControls();
}

// --- a hidden tab ------------------------------------------------------------------------------

// Training in the worker goes on in a hidden tab (the browser throttles timers, not the worker's
// messages), unless the person asked for a pause; then it picks up again when the tab is back.
// Either way one call at a time is in flight, so nothing piles up while nobody looks.
document.addEventListener('visibilitychange', () => {
  if (document.hidden) {
    if (app.mode === 'training' && !$('train-hidden').checked) {
      onPause();
      app.pausedWhenHidden = true;
      view.setStatus('Paused while this tab is hidden; training picks up when you come back.');
    }
  } else if (app.pausedWhenHidden) {
    app.pausedWhenHidden = false;
    if (app.mode === 'paused') onResume();
  }
});

/** Memory figures for the leak check (data attributes) and for the curious. */
async function refreshMemory() {
  if (!app.lab || !app.modelReady) return;
  try {
    const steps = app.trainedSteps;
    const { gpu, heapBytes, wasmBytes } = await app.lab.memory();
    const el = $('memory');
    const mb = (n) => `${(n / 1e6).toFixed(1)} MB`;
    el.textContent =
      `Memory: wasm heap ${mb(heapBytes)} in use of ${mb(wasmBytes)}` +
      (gpu ? ` · GPU pool ${mb(gpu.bytesInUse)} in use, ${mb(gpu.bytesReserved)} reserved, ${formatNumber(gpu.allocations)} buffers` : '');
    Object.assign(el.dataset, {
      steps: String(steps),
      heapBytes: String(heapBytes),
      wasmBytes: String(wasmBytes),
      gpuInUse: gpu ? String(gpu.bytesInUse) : '',
      gpuReserved: gpu ? String(gpu.bytesReserved) : '',
    });
  } catch {
    // Only a figure for the curious: a failure here is reported by the call that matters.
  }
}

// --- compare mode --------------------------------------------------------------------------

async function onCompare() {
  if (!['idle', 'paused'].includes(app.mode)) return;
  const settings = readSettings();
  if (!settings) return;
  const latent = Number($('compare-latent').value);
  app.mode = 'busy';
  updateControls();
  await stopLoop();
  app.mode = 'comparing';
  updateControls();
  try {
    const trainEntries = chunksFor(app.index.train, settings.subset);
    const testEntries = chunksFor(app.index.test, TEST_IMAGES);
    await chunks.fetchAll([...testEntries, ...trainEntries], showFetchProgress);
    const makeLab = async (model, codeSize) => {
      const lab = await app.worker.createLab(app.labBackend);
      await lab.addData('test', testEntries.map((e) => chunks.get(e.file)));
      await lab.addData('train', trainEntries.map((e) => chunks.get(e.file)));
      await lab.reset(model, settings.batchSize, settings.learningRate, settings.seed, codeSize);
      return lab;
    };
    const rows = await compare.run({ settings, latent, makeLab, say: (t) => view.setStatus(t) });
    const [dense, conv] = rows;
    view.setStatus(
      `Compared after ${formatNumber(dense.steps)} steps each: test MSE dense ${formatLoss(dense.testMse)}, conv ${formatLoss(conv.testMse)}.`,
    );
  } catch (err) {
    if (err instanceof WorkerGone) return;
    view.setStatus(`The comparison stopped: ${message(err)}`, 'error');
  }
  app.mode = app.modelReady ? 'idle' : 'error';
  updateControls();
}

// --- keeping models ------------------------------------------------------------------------

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
    smoothed_train_loss: chart.latestSmoothed,
    saved_by: 'page',
  };
}

async function modelBytes() {
  const summary = JSON.stringify(trainingSummary());
  return app.lab.save(summary);
}

async function onSaveModel() {
  if (!app.modelReady) return;
  try {
    const bytes = await modelBytes();
    downloadFile(bytes, `${app.snap.model}-autoencoder-${app.trainedSteps}-steps.bin`);
    $('keep-status').textContent = `Downloaded the ${app.snap.model} model (${formatNumber(bytes.length)} bytes).`;
  } catch (err) {
    $('keep-status').textContent = `Could not save the model: ${message(err)}`;
  }
}

async function onLoadModel(e) {
  const file = e.target.files?.[0];
  e.target.value = ''; // choosing the same file again must fire `change` again
  if (file) await loadModelBytes(() => readFile(file, MAX_MODEL_FILE), file.name);
}

/** Loads a model file into the current Lab; a bad file leaves the current model as it was. */
async function loadModelBytes(getBytes, name) {
  if (!app.modelReady || !['idle', 'paused'].includes(app.mode)) {
    $('keep-status').textContent = 'Wait until the page is ready (or pause training), then load the file.';
    return;
  }
  const settings = app.applied;
  app.mode = 'busy';
  updateControls();
  await stopLoop();
  try {
    const bytes = await getBytes();
    const summaryText = await app.lab.load(bytes, settings.model, settings.batchSize, settings.learningRate, settings.seed);
    app.snap = app.lab.snap;
    await modelChanged(settings, name);
    const summary = JSON.parse(summaryText || 'null');
    const trained = summary?.steps ? `, trained for ${formatNumber(summary.steps)} steps` : '';
    $('keep-status').textContent = `Loaded ${name}: a ${app.snap.model} model${trained}. Train goes on from it with Resume or Step; Train starts a fresh one.`;
    view.setStatus(`Loaded ${name}.`);
  } catch (err) {
    const hint = /was asked for/.test(message(err)) ? ' Choose that model in the Training panel, then load the file again.' : '';
    $('keep-status').textContent = `Could not load ${name}: ${message(err)}.${hint} The current model is unchanged.`;
    view.setStatus(`Could not load ${name}: the current model is unchanged.`, 'error');
  }
  app.mode = 'idle';
  updateControls();
}

/** The finished model stays in this browser, offered on the next visit. */
async function keepInBrowser() {
  try {
    const bytes = await modelBytes();
    // The same read serves as the checkpoint, which the loop would otherwise read again next.
    app.checkpoint = checkpointOf(bytes);
    await keepModel(app.snap.model, bytes, trainingSummary());
  } catch (err) {
    // Keeping is a convenience: say why it did not happen, but do not stop anything.
    $('keep-status').textContent = `This browser did not keep the model: ${message(err)}`;
  }
}

async function offerKeptModels() {
  const offer = $('kept-offer');
  offer.replaceChildren();
  for (const kind of ['dense', 'conv']) {
    let kept = null;
    try {
      kept = await keptModel(kind);
    } catch {
      return; // no storage here: nothing to offer
    }
    if (!kept) continue;
    const when = new Date(kept.savedAt).toLocaleString();
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = `Load the ${kind} model kept on ${when} (${formatNumber(kept.summary?.steps ?? 0)} steps)`;
    button.dataset.kind = kind;
    button.addEventListener('click', async () => {
      if (app.applied?.model !== kind) {
        $('keep-status').textContent = `Choose the ${kind === 'conv' ? 'convolutional' : 'dense'} model and press Reset first, then load it.`;
        return;
      }
      await loadModelBytes(async () => kept.bytes, `the kept ${kind} model`);
    });
    offer.append(button);
  }
  offer.hidden = offer.childElementCount === 0;
}

// --- controls ------------------------------------------------------------------------------

function updateControls() {
  const m = app.mode;
  const ready = app.modelReady;
  view.setState(m === 'busy' ? 'loading' : m === 'idle' ? 'ready' : m);
  view.setEnabled(
    {
      train: (m === 'idle' || m === 'paused') && !!app.index,
      pause: m === 'training',
      resume: canResume(),
      step: (m === 'idle' || m === 'paused') && ready,
      reset: ['idle', 'paused', 'training'].includes(m) && !!app.index,
    },
    !['busy', 'loading', 'comparing', 'lost'].includes(m),
  );
  const calm = (m === 'idle' || m === 'paused') && ready;
  $('fit-predictors').disabled = !calm;
  $('interpolate').disabled = !calm || !predictorsFresh();
  $('map-projection').disabled = !calm || !predictorsFresh();
  $('compare').disabled = !((m === 'idle' || m === 'paused') && !!app.index);
  $('compare-stop').disabled = m !== 'comparing';
  $('save-model').disabled = !calm;
  $('load-model').disabled = !calm;
  updateSettingsNote();
}

function updateSettingsNote() {
  const { settings } = checkSettings();
  view.setSettingsNote(!!app.applied && !!settings && !sameModelSettings(settings, app.applied));
}

view.buttons.train.addEventListener('click', onTrain);
view.buttons.pause.addEventListener('click', onPause);
view.buttons.resume.addEventListener('click', onResume);
view.buttons.step.addEventListener('click', onStep);
view.buttons.reset.addEventListener('click', onReset);
view.clearPadButton.addEventListener('click', () => pad.clear());
$('fit-predictors').addEventListener('click', () => fitPredictors());
$('map-projection').addEventListener('change', (e) => changeProjection(e.target.value));
$('interpolate').addEventListener('click', onInterpolate);
$('compare').addEventListener('click', onCompare);
$('compare-stop').addEventListener('click', () => compare.stop());
$('save-model').addEventListener('click', onSaveModel);
$('load-model').addEventListener('change', onLoadModel);

view.form.addEventListener('submit', (e) => e.preventDefault());
// Errors show when a value is committed, and go away as soon as the field is fixed.
view.form.addEventListener('change', () => {
  view.showFieldErrors(checkSettings().errors);
  if (app.gpu) showBackendInfo(app.mode === 'training' ? app.applied?.backend : null);
  updateControls();
});
view.form.addEventListener('input', (e) => {
  const { errors } = checkSettings();
  if (!errors[e.target.name]) view.showFieldErrors({ ...visibleErrors(), [e.target.name]: undefined });
  updateControls();
});

function visibleErrors() {
  const out = {};
  for (const f of Object.keys(view.fields)) {
    const text = document.getElementById(`${f}-error`).textContent;
    if (text) out[f] = text;
  }
  return out;
}

// Anything that escapes a handler still reaches the person, in words.
window.addEventListener('unhandledrejection', (e) => view.setStatus(`Unexpected error: ${message(e.reason)}`, 'error'));
window.addEventListener('error', (e) => view.setStatus(`Unexpected error: ${message(e.error ?? e.message)}`, 'error'));

// --- helpers -------------------------------------------------------------------------------

function message(err) {
  if (err instanceof Error) return err.message;
  return String(err);
}

start();
