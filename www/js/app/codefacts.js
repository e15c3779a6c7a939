// The model's code in words: its size, what follows the code layer, and how many of its numbers
// are dead (0 for every loaded test digit). Why it matters: a ReLU passes no gradient back for an
// input below zero, so a code number that no image switches on never learns to; when every one
// is dead, the decoder gets the same code for every digit and can only output the average digit.
// The count is known after an epoch ends, when the predictors are fitted, and when a model loads.
import { WorkerGone } from '../lab/labworker.js';
import { codeText, deadCodeNote } from '../shared/codetext.js';
import { app, page } from './state.js';

/** Shows the current model's code; app.deadCode is the count, or null while unknown. */
export function showCode() {
  const snap = app.snap;
  if (!snap) return;
  const units = snap.latentSize;
  const dead = app.deadCode;
  page.view.setCode({
    text: codeText(units, snap.codeActivation, dead),
    units,
    activation: snap.codeActivation,
    dead,
    note: deadCodeNote({ model: snap.model, units, dead }),
    allDead: dead != null && dead === units,
  });
}

/** Records `dead` as the current model's count (as of `steps` trained) and shows it. */
export function knowDeadCode(dead, steps = app.trainedSteps) {
  if (steps !== app.trainedSteps) return; // trained on since: the count is stale
  app.deadCode = dead;
  showCode();
}

/** Counts the current model's dead code numbers on the test digits; null if it could not. */
export async function measureDeadCode() {
  const lab = app.lab;
  const steps = app.trainedSteps;
  try {
    const dead = await lab.deadCodeUnits();
    if (lab === app.lab) knowDeadCode(dead, steps);
    return dead;
  } catch (err) {
    if (err instanceof WorkerGone) throw err;
    return null; // a figure for the facts: the calls that matter report their own failures
  }
}

/** Whether the current model's code is known to be dead through and through. */
export function codeIsDead() {
  return app.deadCode != null && app.snap && app.deadCode === app.snap.latentSize;
}
