// The page's control table (www/js/app/state.js): which control works in each mode, on what else
// it waits (the data index, a model, fitted predictors, a run that can go on), and setMode's rules.
// The table is written out here a second time, by hand, so that a rule changed in one place and
// not the other fails here rather than in a browser.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';
import { parseSettings } from '../../www/js/app/settings.js';
import { CONTROLS, app, can, canResume, connect, setMode } from '../../www/js/app/state.js';

const FORM = {
  backend: 'cpu',
  model: 'dense',
  codeActivation: 'linear',
  subset: '1000',
  epochs: '2',
  batchSize: '32',
  learningRate: '0.001',
  seed: '0',
};

/** A view that records what the page would show, and a form whose fields the test sets. */
function fakeView() {
  return {
    form: { ...FORM },
    shown: {},
    readFields() {
      return { ...this.form };
    },
    setState(state) {
      this.shown.state = state;
    },
    setEnabled(enabled, fields) {
      this.shown.enabled = enabled;
      this.shown.fields = fields;
    },
    showCodeChoice() {},
    setSettingsNote(visible) {
      this.shown.settingsNote = visible;
    },
    showFieldErrors() {},
    setStatus() {},
  };
}

let view;

// Every condition met: the index loaded, a model trained for 10 steps (epoch 0 of the form's 2)
// with the form's settings, and predictors fitted to it.
beforeEach(() => {
  view = fakeView();
  connect({ view });
  Object.assign(app, {
    mode: 'idle',
    index: { train: [{ file: 'train-0.bin', images: 1000 }], test: [] },
    modelReady: true,
    applied: parseSettings(FORM).settings,
    snap: { epoch: 0 },
    trainedSteps: 10,
    loaded: null,
    predictorsStep: 10,
    timing: null,
  });
});

const ALL = [
  'train',
  'pause',
  'resume',
  'step',
  'reset',
  'fitPredictors',
  'interpolate',
  'projection',
  'compare',
  'compareStop',
  'saveModel',
  'savePytorch',
  'loadModel',
  'fields',
];
const AT_REST = ALL.filter((c) => c !== 'pause' && c !== 'compareStop');

// Which controls work in each mode when nothing else is missing.
const TABLE = {
  loading: [],
  busy: [],
  idle: AT_REST,
  paused: AT_REST,
  training: ['pause', 'reset', 'fields'],
  comparing: ['compareStop'],
  error: ['fields'],
  lost: [],
};

const enabledIn = (mode) => {
  app.mode = mode;
  return ALL.filter((c) => can(c));
};

test('the table here names every control the page enables', () => {
  assert.deepEqual(Object.keys(CONTROLS).sort(), [...ALL].sort());
});

for (const [mode, controls] of Object.entries(TABLE)) {
  test(`in mode '${mode}' exactly ${controls.length ? controls.join(', ') : 'no control'} work`, () => {
    assert.deepEqual(enabledIn(mode), controls);
  });
}

test('before the data index loads, nothing that needs data works', () => {
  app.index = null;
  for (const mode of ['idle', 'paused']) {
    const off = AT_REST.filter((c) => !enabledIn(mode).includes(c));
    assert.deepEqual(off, ['train', 'reset', 'compare'], mode);
  }
  assert.deepEqual(enabledIn('training'), ['pause', 'fields']);
});

test('without a model, nothing that needs one works (Resume after Pause aside)', () => {
  app.modelReady = false;
  const off = (mode) => AT_REST.filter((c) => !enabledIn(mode).includes(c));
  const needModel = ['step', 'fitPredictors', 'interpolate', 'projection', 'saveModel', 'savePytorch', 'loadModel'];
  assert.deepEqual(off('idle'), ['resume', ...needModel].sort((a, b) => ALL.indexOf(a) - ALL.indexOf(b)));
  assert.deepEqual(off('paused'), needModel);
});

test('predictors fitted to another step (or none) leave the map and interpolation off', () => {
  for (const predictorsStep of [null, 9]) {
    app.predictorsStep = predictorsStep;
    assert.deepEqual(
      AT_REST.filter((c) => !enabledIn('idle').includes(c)),
      ['interpolate', 'projection'],
      `predictors of step ${predictorsStep}`,
    );
  }
});

test('Resume works after Pause, even on an untrained model', () => {
  Object.assign(app, { mode: 'paused', trainedSteps: 0 });
  assert.ok(canResume());
});

test('Resume goes on from a finished run only to a larger epoch count', () => {
  app.snap = { epoch: 2 };
  assert.ok(!canResume(), 'the run reached the 2 epochs the form asks for');
  view.form.epochs = '3';
  assert.ok(canResume(), 'a third epoch to train');
});

test('Resume needs a model trained or loaded, with the settings it was made with', () => {
  app.trainedSteps = 0;
  assert.ok(!canResume(), 'a fresh model: Train starts it');
  app.loaded = 'conv.bin';
  assert.ok(canResume(), 'a loaded model trains on from the file');
  for (const [field, value] of [['seed', '1'], ['batchSize', '16'], ['model', 'conv'], ['codeActivation', 'relu']]) {
    view.form = { ...FORM, [field]: value };
    assert.ok(!canResume(), `${field} changed: a fresh model`);
  }
  view.form = { ...FORM, epochs: 'two' };
  assert.ok(!canResume(), 'a form with a bad field');
  app.modelReady = false;
  view.form = { ...FORM };
  assert.ok(!canResume(), 'no model');
});

test('setMode shows the mode and the table on the page', () => {
  setMode('training');
  assert.equal(view.shown.state, 'training');
  assert.deepEqual(
    Object.keys(view.shown.enabled).filter((c) => view.shown.enabled[c]),
    ['pause', 'reset', 'fields'],
  );
  assert.equal(view.shown.fields, true);
  setMode('busy');
  assert.equal(view.shown.state, 'loading', 'busy shows as loading');
  assert.equal(view.shown.fields, false);
  setMode('idle');
  assert.equal(view.shown.state, 'ready', 'idle shows as ready');
});

test("'lost' holds until recovery leaves it", () => {
  setMode('lost');
  setMode('idle');
  assert.equal(app.mode, 'lost', 'a handler still finishing cannot leave it');
  setMode('busy', { leavingLost: true });
  assert.equal(app.mode, 'busy');
});

test("training or comparing stops the backends' timing at start", () => {
  for (const mode of ['training', 'comparing']) {
    const stopped = [];
    app.timing = { stop: (why) => stopped.push(why) };
    setMode('paused');
    assert.deepEqual(stopped, [], 'paused');
    setMode(mode);
    assert.equal(stopped.length, 1, mode);
  }
});

test('the settings note shows when the form asks for another model than the current one', () => {
  setMode('idle');
  assert.equal(view.shown.settingsNote, false);
  view.form.seed = '7';
  setMode('idle');
  assert.equal(view.shown.settingsNote, true);
  view.form = { ...FORM, epochs: '5' };
  setMode('idle');
  assert.equal(view.shown.settingsNote, false, 'epochs alone need no fresh model');
});
