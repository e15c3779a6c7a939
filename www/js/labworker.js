// The main thread's side of the training worker (worker.js): a promise per command, and a
// RemoteLab per Lab living in the worker. Nothing here blocks: the page keeps drawing while a
// step runs.

/** The worker is gone (a trap in the wasm, the device lost): make a new one to go on. */
export class WorkerGone extends Error {
  constructor(why) {
    super(why);
    this.name = 'WorkerGone';
  }
}

export class LabWorker {
  #worker;
  #pending = new Map();
  #nextId = 1;
  #gone = null;

  /** onGone(why) is called once if the worker dies or its GPU device is lost. */
  constructor({ onGone = () => {} } = {}) {
    this.onGone = onGone;
    this.#worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    this.#worker.onmessage = ({ data }) => this.#receive(data);
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#die(`the training worker failed: ${e.message || 'it could not load its script'}`);
    };
    this.#worker.onmessageerror = () => this.#die('the training worker sent a message that could not be read');
  }

  get gone() {
    return this.#gone;
  }

  /** Sends one command; `transfer` lists buffers handed over rather than copied. */
  call(command, args = {}, lab = undefined, transfer = []) {
    if (this.#gone) return Promise.reject(new WorkerGone(this.#gone));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, command });
      this.#worker.postMessage({ id, command, lab, args }, transfer);
    });
  }

  async init() {
    return this.call('init');
  }

  async createLab(backend) {
    const { lab, snap } = await this.call('create', { backend });
    return new RemoteLab(this, lab, snap);
  }

  prepareDrawing(ink, width, height) {
    return this.call('prepareDrawing', { ink, width, height }, undefined, [ink.buffer]);
  }

  /** Stops the worker; every call in flight fails with `why`. */
  terminate(why = 'the training worker was stopped') {
    this.#worker.terminate();
    this.#fail(why);
  }

  #receive(data) {
    if (data.event === 'deviceLost') {
      this.#die(`the GPU device was lost (${data.reason}: ${data.message})`);
      return;
    }
    const call = this.#pending.get(data.id);
    if (!call) return;
    this.#pending.delete(data.id);
    if (data.error === undefined) {
      call.resolve(data.value);
    } else if (data.fatal) {
      call.reject(new WorkerGone(data.error));
      this.#die(`the training worker crashed in ${call.command}: ${data.error}`);
    } else {
      call.reject(new Error(data.error));
    }
  }

  #die(why) {
    if (this.#gone) return;
    this.#worker.terminate();
    this.#fail(why);
    this.onGone(why);
  }

  #fail(why) {
    this.#gone ??= why;
    for (const { reject } of this.#pending.values()) reject(new WorkerGone(why));
    this.#pending.clear();
  }
}

/**
 * One Lab in the worker. `snap` holds its counters as of the last answer, so the page can read
 * them at any time without asking.
 */
export class RemoteLab {
  constructor(worker, id, snap) {
    this.worker = worker;
    this.id = id;
    this.snap = snap;
  }

  get backend() {
    return this.snap.backend;
  }

  async #call(command, args, transfer) {
    const value = await this.worker.call(command, args, this.id, transfer);
    if (value?.snap) this.snap = value.snap;
    return value;
  }

  /** Chunks are copied, not transferred: the page keeps them to load them again later. */
  async addData(split, chunks) {
    return (await this.#call('addData', { split, chunks })).images;
  }

  async clearData() {
    await this.#call('clearData');
  }

  async reset(model, batchSize, learningRate, seed, latent = 0) {
    await this.#call('reset', { model, batchSize, learningRate, seed, latent });
  }

  /** Resolves to the file's training summary (JSON text) once the model is loaded. */
  async load(bytes, model, batchSize, learningRate, seed) {
    return (await this.#call('load', { bytes, model, batchSize, learningRate, seed })).summary;
  }

  save(summary) {
    return this.#call('save', { summary });
  }

  /** Up to `steps` batches; resolves to { losses, ms } (ms: time the worker spent on them). */
  async step(steps) {
    const { losses, ms } = await this.#call('step', { steps });
    return { losses, ms };
  }

  evaluate() {
    return this.#call('evaluate');
  }

  testPixels(start, count) {
    return this.#call('testPixels', { start, count });
  }

  testLabels(start, count) {
    return this.#call('testLabels', { start, count });
  }

  reconstruct(pixels) {
    return this.#call('reconstruct', { pixels });
  }

  read(pixels) {
    return this.#call('read', { pixels });
  }

  fitPredictors(maxTrain, k, linearEpochs) {
    return this.#call('fitPredictors', { maxTrain, k, linearEpochs });
  }

  setProjection(kind, x, y) {
    return this.#call('setProjection', { kind, x, y });
  }

  map() {
    return this.#call('map');
  }

  decodePoint(x, y) {
    return this.#call('decodePoint', { x, y });
  }

  interpolate(a, b, points) {
    return this.#call('interpolate', { a, b, points });
  }

  memory() {
    return this.#call('memory');
  }

  async free() {
    if (this.worker.gone) return;
    await this.#call('free').catch(() => {});
  }
}
