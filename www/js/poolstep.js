// One training step cut over the workers of a pool (pool.js), from inside one of them. Each
// worker holds the same model and training images; worker k computes part k of the batch
// (Lab.shareGradients), the lead worker (part 0) adds the parts' gradients in part order and sends
// the sum back, and every worker applies that same sum with Adam (Lab.applyGradients). The copies
// stay identical, and the sum's fixed order makes a run the same for a given seed and pool size.
//
// The workers talk over MessagePorts of their own, not through the page: the page's thread is
// not woken for each step, and a step waits only for the slowest part.

/** A MessagePort as a queue: receive() resolves with the next message, in order. */
class Inbox {
  #queue = [];
  #waiting = null;

  constructor(port) {
    this.port = port;
    port.onmessage = ({ data }) => {
      if (this.#waiting) {
        const resolve = this.#waiting;
        this.#waiting = null;
        resolve(data);
      } else {
        this.#queue.push(data);
      }
    };
  }

  receive() {
    if (this.#queue.length) return Promise.resolve(this.#queue.shift());
    return new Promise((resolve) => {
      this.#waiting = resolve;
    });
  }

  send(message, transfer = []) {
    this.port.postMessage(message, transfer);
  }
}

/** One worker's place in a pool: part `part` of `parts`; the lead has a port to each helper. */
export class PoolLink {
  #broken = null;

  constructor(part, parts, ports) {
    this.part = part;
    this.parts = parts;
    this.inboxes = ports.map((port) => new Inbox(port));
  }

  /**
   * Up to `maxSteps` pooled steps on `lab`, never past the end of the epoch (as Lab.step).
   * Resolves to the steps' losses: the whole batch's on the lead worker, this part's elsewhere.
   */
  async steps(lab, maxSteps) {
    // After a failed step the copies may differ: only a fresh pool (the page starts one) is safe.
    if (this.#broken) throw new Error(`the worker pool is out of step since: ${this.#broken}`);
    if (!lab.model) throw new Error('no model yet: reset one first');
    const losses = new Float32Array(Math.min(maxSteps, lab.batchesPerEpoch - lab.batch));
    try {
      for (let i = 0; i < losses.length; i++) losses[i] = this.part === 0 ? await this.#lead(lab) : await this.#help(lab);
    } catch (err) {
      this.#broken = err instanceof Error ? err.message : String(err);
      throw err;
    }
    return losses;
  }

  async #lead(lab) {
    const own = await this.#share(lab);
    const sum = own.gradients;
    let loss = own.loss;
    for (const [k, inbox] of this.inboxes.entries()) {
      const part = await inbox.receive();
      if (part.error) {
        this.#tellHelpers({ error: part.error });
        throw new Error(`training worker ${k + 2} failed: ${part.error}`);
      }
      const g = part.gradients;
      for (let j = 0; j < sum.length; j++) sum[j] += g[j];
      loss += part.loss;
    }
    this.#tellHelpers({ gradients: sum });
    lab.applyGradients(sum);
    return loss;
  }

  async #help(lab) {
    const [lead] = this.inboxes;
    const own = await this.#share(lab);
    lead.send({ loss: own.loss, gradients: own.gradients }, [own.gradients.buffer]);
    const answer = await lead.receive();
    if (answer.error) throw new Error(`the lead training worker failed: ${answer.error}`);
    lab.applyGradients(answer.gradients);
    return own.loss;
  }

  /** This worker's part: { loss, gradients }. A failure is passed on, so nobody waits forever. */
  async #share(lab) {
    let share;
    try {
      share = await lab.shareGradients(this.part, this.parts);
      return { loss: share.loss, gradients: share.gradients };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      if (this.part === 0) this.#tellHelpers({ error });
      else this.inboxes[0].send({ error });
      throw err;
    } finally {
      share?.free();
    }
  }

  #tellHelpers(message) {
    for (const inbox of this.inboxes) inbox.send(message);
  }
}
