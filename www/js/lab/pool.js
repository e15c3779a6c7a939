// Training on every core on the CPU backend. A page's WebAssembly runs on one thread, so the CPU
// backend gets a pool of workers: the page's own training worker leads, and each helper worker
// holds a copy of the same model and training images. A step is cut over them (poolstep.js):
// each computes its part of the batch, the parts' gradients are added in a fixed order and every
// copy takes the same Adam step, so the copies stay identical and a run is the same for a given
// seed and pool size.
//
// A LabPool answers everything a RemoteLab does: the methods that change the model or the
// training images go to every worker (protocol.js's POOLED_METHODS), `step` is cut over them, and
// everything else asks the lead worker. If any worker of the pool dies, the lead worker is killed
// with the reason, so the page recovers as from any lost worker (recovery.js).
import { usableCores } from './cores.js';
import { LabWorker } from './labworker.js';
import { LAB_METHODS, POOLED_METHODS } from '../shared/protocol.js';

// Each part keeps at least this many of a batch's images: a smaller part costs more in fixed
// per-operation work than it saves (natively the same floor, `cores_for` in src/train/).
const MIN_IMAGES_PER_WORKER = 8;
// Each worker holds the training images and a model; past a few, the per-step exchange of
// gradients costs more than another core brings at the seed's batch of 32.
export const MAX_WORKERS = 4;

/**
 * How many workers train `model` ('dense' or 'conv') in batches of `batchSize` on the CPU
 * backend: for the conv model one per core it can use (cores.js: the cores the browser reports,
 * timed where it reports more than 2), at most MAX_WORKERS and at most one per
 * MIN_IMAGES_PER_WORKER images of a batch. The dense
 * model stays on one: its step is a few small products whose cost is mostly per operation, which
 * every part pays again, and the gradients' exchange and the wait cost about 2 ms a step (README,
 * "Training in the browser"). `?workers=N` in the address overrides both.
 */
export function poolSize({ model, batchSize }) {
  const asked = Number(new URLSearchParams(globalThis.location?.search ?? '').get('workers'));
  if (Number.isInteger(asked) && asked >= 1) return Math.min(asked, 16);
  if (model === 'dense') return 1;
  return Math.max(1, Math.min(usableCores(), MAX_WORKERS, Math.floor(Number(batchSize) / MIN_IMAGES_PER_WORKER)));
}

export class LabPool {
  /** Use LabPool.create. `lead` and `helpers` are RemoteLabs, the lead's in the page's worker. */
  constructor(lead, helpers) {
    this.lead = lead;
    this.helpers = helpers;
  }

  /**
   * A Lab on `backend` in `worker` (which leads) and in `size - 1` new helper workers, joined
   * into a pool. A helper that fails to start fails the whole pool, and nothing is left behind.
   */
  static async create(worker, backend, size) {
    const lead = await worker.createLab(backend);
    const helpers = [];
    try {
      for (let k = 1; k < size; k++) {
        const name = `${worker.name} ${k + 1} of ${size}`;
        helpers.push(new LabWorker({ name, onGone: (why) => worker.kill(`${name} stopped: ${why}`) }));
      }
      // Each loads the lead's wasm module at once (the browser compiles them side by side): the
      // same code in every part, so that the copies stay the same to the bit.
      const labs = await Promise.all(helpers.map((helper) => helper.init(lead.module).then(() => helper.createLab(backend))));
      // A channel between every two workers: each sends its part to all the others.
      const all = [lead, ...labs];
      const links = all.map(() => ({ peers: [], ports: [] }));
      for (let i = 0; i < size; i++) {
        for (let j = i + 1; j < size; j++) {
          const { port1, port2 } = new MessageChannel();
          links[i].peers.push(j);
          links[i].ports.push(port1);
          links[j].peers.push(i);
          links[j].ports.push(port2);
        }
      }
      await Promise.all(
        all.map((lab, k) => lab.worker.call('joinPool', [k, size, links[k].peers, links[k].ports], lab.id, links[k].ports)),
      );
      // The helpers go with the lead worker, whatever ends it.
      worker.ended.then((why) => helpers.forEach((helper) => helper.terminate(why)));
      return new LabPool(lead, labs);
    } catch (err) {
      for (const helper of helpers) helper.terminate('the worker pool did not start');
      await lead.free();
      throw err;
    }
  }

  /** Workers training on this Lab, the lead included. */
  get workers() {
    return 1 + this.helpers.length;
  }

  get worker() {
    return this.lead.worker;
  }

  get backend() {
    return this.lead.backend;
  }

  get snap() {
    return this.lead.snap;
  }

  get lastMs() {
    return this.lead.lastMs;
  }

  get lastGpu() {
    return this.lead.lastGpu;
  }

  /** `k` steps at most, each cut over the pool; resolves to the batches' losses. */
  async step(k) {
    if (!this.helpers.length) return this.lead.step(k);
    try {
      // Every worker has every batch's loss; the lead's answer is the one kept.
      const [losses] = await Promise.all([this.lead, ...this.helpers].map((lab) => lab.call('stepPooled', k)));
      return losses;
    } catch (err) {
      // A part that failed leaves the copies out of step: the pool is done for, and the page
      // starts again from its last checkpoint, as after a lost worker.
      this.worker.kill(`a training step across the worker pool failed: ${err instanceof Error ? err.message : err}`);
      throw err;
    }
  }

  memory() {
    return this.lead.memory();
  }

  async free() {
    for (const lab of this.helpers) lab.worker.terminate('the worker pool was freed');
    await this.lead.free();
  }
}

for (const name of LAB_METHODS) {
  if (name === 'step') continue;
  LabPool.prototype[name] = function (...args) {
    // Only the lead evaluates, so only it needs the test images.
    const everyone = POOLED_METHODS.has(name) && !(name === 'addData' && args[0] === 'test');
    if (!everyone) return this.lead[name](...args);
    return Promise.all([this.lead, ...this.helpers].map((lab) => lab[name](...args))).then(([value]) => value);
  };
}
