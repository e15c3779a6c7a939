// The page's state, and its modes: what the page is doing now, and which control works in which
// mode (CONTROLS, the one table). The other modules read `app`, change the mode only through
// setMode, and guard their handlers with can(); updateControls shows the table on the page.
//
// Nothing here touches the DOM when imported: main.js builds the views and hands them in
// (connect), so that the app's logic loads in Node and its rules are tested there (tests/unit).
import { ChunkCache } from '../data/data.js';
import { parseSettings, sameModelSettings } from './settings.js';

/** The MNIST chunks fetched so far, kept for every Lab this page makes. */
export const chunks = new ChunkCache();

/**
 * What main.js hands in: the views (view: views/ui.js's View; chart; pad; latentMap; interpView;
 * predictView; compare) and `restart`, the page's start-up, offered as Retry when a failure leaves
 * no model. Callbacks go down: no module of the app imports main.js.
 */
export const page = {
  view: null,
  chart: null,
  pad: null,
  latentMap: null,
  interpView: null,
  predictView: null,
  compare: null,
  restart: null,
};

export function connect(parts) {
  Object.assign(page, parts);
}

export const app = {
  // loading | busy | idle | training | paused | comparing | error | lost. 'lost' (the worker is
  // gone) holds until recovery leaves it: a handler still finishing cannot set another mode.
  mode: 'loading',
  worker: null, // the LabWorker that holds the wasm module
  index: null, // data/index.json
  gpu: null, // what probeWebGPU found
  measured: null, // both backends' speed, timed at start (measure.js), where WebGPU has an adapter
  timing: null, // that timing while it runs in the background: { running, stoppedBy, stop(why) }
  backendByPage: null, // the backend the page put in the form (not one picked by hand)
  // The backend was picked by hand (in the form, or by the address the page opened with, where
  // the page could honour it): a link to the run names it (app/share.js).
  backendByHand: false,
  // The address the page was opened with: what it asked for (?backend=) holds for this visit,
  // while the page rewrites the address as the form changes (app/share.js).
  openedWith: null,
  // field -> why the link's value for it was not used; shown until that field is changed by hand.
  linkErrors: {},
  lab: null, // a RemoteLab in the worker
  labBackend: null,
  snap: null, // the lab's counters as of its last answer
  labFiles: '', // the chunk files added to `lab`, to know when to re-add
  modelReady: false,
  applied: null, // the settings the current model was made with
  loaded: null, // the name of the model file the current model came from, if it did
  targetEpochs: 0,
  trainedSteps: 0, // steps since the model was made, as shown on the chart
  msPerStep: null, // smoothed, for images/s and time left
  dispatchesPerStep: null, // WebGPU compute dispatches in the last step (gpucount.js)
  lastGridAt: 0,
  gridMs: 0,
  gridStep: -1, // the step the grid's reconstructions show
  runsStarted: 0, // presses of Train that began a fresh run, on body[data-runs] for the page tests
  lastTestMse: null,
  deadCode: null, // code numbers 0 for every test digit (codefacts.js); null: not measured for this model
  predictorsStep: null, // the step the predictors (and the map) were fitted at; null: none
  testLabels: null,
  gridPixels: null,
  // The last weights copied out of the worker: { bytes, steps, epoch, settings, loaded, at }.
  // What is left when the GPU device is lost.
  checkpoint: null,
  lostWhy: null, // set while the worker is gone, until a new one has the model
  resumeAfterRecovery: false,
  pausedWhenHidden: false,
};

// Which controls work in which mode, and on what else they wait:
//   data: the index has loaded; model: a model is ready; predictors: fitted to this model;
//   resumable: see canResume. 'fields' is the training form.
export const CONTROLS = {
  train: [['idle', 'paused'], 'data'],
  pause: [['training']],
  resume: [['idle', 'paused'], 'resumable'],
  step: [['idle', 'paused'], 'model'],
  reset: [['idle', 'paused', 'training'], 'data'],
  fitPredictors: [['idle', 'paused'], 'model'],
  interpolate: [['idle', 'paused'], 'predictors'],
  projection: [['idle', 'paused'], 'predictors'],
  compare: [['idle', 'paused'], 'data'],
  compareStop: [['comparing']],
  saveModel: [['idle', 'paused'], 'model'],
  savePytorch: [['idle', 'paused'], 'model'],
  loadModel: [['idle', 'paused'], 'model'],
  fields: [['idle', 'paused', 'training', 'error']],
};

const CONDITIONS = {
  data: () => !!app.index,
  model: () => app.modelReady,
  predictors: () => predictorsFresh(),
  resumable: () => canResume(),
};

/** Whether `control` works now. Handlers ask too: a click can land before the page disables it. */
export function can(control) {
  const [modes, condition] = CONTROLS[control];
  return modes.includes(app.mode) && (!condition || CONDITIONS[condition]());
}

/**
 * Enters `mode` and shows what works in it; while the worker is lost, only recovery leaves.
 * Training (or comparing) stops the backends' timing at start, if it still runs (app/backend.js).
 */
export function setMode(mode, { leavingLost = false } = {}) {
  if (app.mode !== 'lost' || leavingLost) app.mode = mode;
  if (app.mode === 'training' || app.mode === 'comparing') app.timing?.stop('training began before the timing ended');
  updateControls();
  if (RESTING.includes(app.mode)) for (const resolve of restingWaiters.splice(0)) resolve();
}

// The modes in which nothing trains, loads or starts: background work that would compete with
// training for the cores (keeping the page for offline use, app/offline.js) waits for one.
const RESTING = ['idle', 'paused', 'error'];
const restingWaiters = [];

/** Whether nothing trains, loads or starts now. */
export const resting = () => RESTING.includes(app.mode);

/** Resolves now, or once the page next enters a mode in which nothing trains or loads. */
export function whenResting() {
  return resting() ? Promise.resolve() : new Promise((resolve) => restingWaiters.push(resolve));
}

export function updateControls() {
  const { view } = page;
  const m = app.mode;
  view.setState(m === 'busy' ? 'loading' : m === 'idle' ? 'ready' : m);
  const enabled = Object.fromEntries(Object.keys(CONTROLS).map((c) => [c, can(c)]));
  view.setEnabled(enabled, enabled.fields);
  view.showCodeChoice(view.readFields().model);
  updateSettingsNote();
}

/** Train begins a fresh run; counted for the page tests ("two fast clicks start one run"). */
export function countRun() {
  app.runsStarted += 1;
  page.view.setRunsStarted(app.runsStarted);
}

/** Whether Resume trains on: after Pause, or after a finished run to a larger epoch count. */
export function canResume() {
  if (app.mode === 'paused') return true;
  if (app.mode !== 'idle' || !app.modelReady || (app.trainedSteps === 0 && !app.loaded)) return false;
  const { settings } = checkSettings();
  return !!settings && sameModelSettings(settings, app.applied) && app.snap.epoch < settings.epochs;
}

export function predictorsFresh() {
  return app.predictorsStep !== null && app.predictorsStep === app.trainedSteps && app.modelReady;
}

/** The form's settings, checked against what the server has. */
export function checkSettings() {
  return parseSettings(page.view.readFields(), { trainImages: trainImagesOnServer() });
}

export function trainImagesOnServer() {
  return app.index ? app.index.train.reduce((n, e) => n + e.images, 0) : Infinity;
}

/** What the fields show: the form's errors, and the link's refusals the person has not yet answered. */
export function shownErrors(errors) {
  return { ...app.linkErrors, ...errors };
}

/** Checks the form; shows what is wrong next to each bad field. */
export function readSettings() {
  const { settings, errors } = checkSettings();
  page.view.showFieldErrors(shownErrors(errors));
  if (!settings) page.view.setStatus('Some settings are not valid: see the marked fields.', 'error');
  return settings;
}

export function updateSettingsNote() {
  const { settings } = checkSettings();
  page.view.setSettingsNote(!!app.applied && !!settings && !sameModelSettings(settings, app.applied));
}
