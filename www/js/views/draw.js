// The drawing pad: pointer events (mouse, touch, pen) paint a thick round stroke on a transparent
// canvas, so the canvas's alpha channel is the ink. Tells its owner about new ink at most every
// `throttleMs` while a stroke goes on, and at once when it ends. Each change of the ink counts up
// its `version` (also the canvas's `data-ink`), so that what was read from the ink can say which
// ink it was: a reading of half a stroke is not the drawing's.

export class DrawingPad {
  #canvas;
  #ctx;
  #onInk;
  #throttleMs;
  #pointerId = null;
  #last = null;
  #hasInk = false;
  #timer = 0;
  #lastNotify = 0;
  #version = 0;

  /**
   * canvas: its width/height attributes fix the ink resolution, whatever its CSS size.
   * onInk(): called when the ink changed (also after clear()).
   */
  constructor(canvas, { onInk, throttleMs = 150 }) {
    this.#canvas = canvas;
    this.#ctx = canvas.getContext('2d', { willReadFrequently: true });
    this.#onInk = onInk;
    this.#throttleMs = throttleMs;
    const ctx = this.#ctx;
    // About 1/14 of the pad: after the stroke box is fit into 20x20 pixels this gives strokes
    // about as wide as MNIST's (2-3 pixels).
    ctx.lineWidth = Math.round(canvas.width / 14);
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.strokeStyle = '#000';
    ctx.fillStyle = '#000';

    canvas.addEventListener('pointerdown', (e) => this.#down(e));
    canvas.addEventListener('pointermove', (e) => this.#move(e));
    canvas.addEventListener('pointerup', (e) => this.#up(e));
    canvas.addEventListener('pointercancel', (e) => this.#up(e));
    // A stray context menu (long press, right button) would interrupt a stroke.
    canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  }

  get isEmpty() {
    return !this.#hasInk;
  }

  get width() {
    return this.#canvas.width;
  }

  get height() {
    return this.#canvas.height;
  }

  /** Counts the ink's changes: the number `ink()` now would be read at. */
  get version() {
    return this.#version;
  }

  clear() {
    this.#ctx.clearRect(0, 0, this.#canvas.width, this.#canvas.height);
    this.#hasInk = false;
    this.#pointerId = null;
    this.#last = null;
    this.#changed();
    this.#notifyNow();
  }

  /** The ink as a Float32Array(width * height) in [0, 1], row-major (alpha / 255). */
  ink() {
    const { data } = this.#ctx.getImageData(0, 0, this.#canvas.width, this.#canvas.height);
    const ink = new Float32Array(data.length / 4);
    for (let i = 0; i < ink.length; i++) ink[i] = data[i * 4 + 3] / 255;
    return ink;
  }

  #point(e) {
    const r = this.#canvas.getBoundingClientRect();
    return {
      x: ((e.clientX - r.left) / r.width) * this.#canvas.width,
      y: ((e.clientY - r.top) / r.height) * this.#canvas.height,
    };
  }

  #down(e) {
    if (this.#pointerId !== null || (e.pointerType === 'mouse' && e.button !== 0)) return;
    e.preventDefault();
    this.#pointerId = e.pointerId;
    this.#canvas.setPointerCapture(e.pointerId);
    this.#last = this.#point(e);
    // A tap makes a dot.
    const ctx = this.#ctx;
    ctx.beginPath();
    ctx.arc(this.#last.x, this.#last.y, ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
    this.#hasInk = true;
    this.#changed();
    this.#notifySoon();
  }

  #move(e) {
    if (e.pointerId !== this.#pointerId) return;
    e.preventDefault();
    const ctx = this.#ctx;
    ctx.beginPath();
    ctx.moveTo(this.#last.x, this.#last.y);
    // Coalesced events keep fast strokes smooth where the browser batches moves per frame.
    const events = e.getCoalescedEvents?.() ?? [];
    for (const ev of events.length ? events : [e]) {
      this.#last = this.#point(ev);
      ctx.lineTo(this.#last.x, this.#last.y);
    }
    ctx.stroke();
    this.#changed();
    this.#notifySoon();
  }

  #up(e) {
    if (e.pointerId !== this.#pointerId) return;
    this.#pointerId = null;
    this.#last = null;
    this.#notifyNow();
  }

  #changed() {
    this.#version += 1;
    this.#canvas.dataset.ink = String(this.#version);
  }

  #notifySoon() {
    if (this.#timer) return;
    const wait = Math.max(0, this.#lastNotify + this.#throttleMs - performance.now());
    this.#timer = setTimeout(() => this.#notifyNow(), wait);
  }

  #notifyNow() {
    clearTimeout(this.#timer);
    this.#timer = 0;
    this.#lastNotify = performance.now();
    this.#onInk();
  }
}
