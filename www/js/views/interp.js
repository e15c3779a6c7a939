// The interpolation's view: its two ends (the picked test digits, each shown with its image and
// label; the highlighted one takes the next pick), the strip of decoded steps, and its error line.
// Each end carries data-index and data-label, and the strip data-filled and data-ends (the two
// test image numbers it was decoded between), for the page tests.
import { IMAGE_PIXELS, IMAGE_SIDE } from '../shared/constants.js';
import { $, drawDigit } from './ui.js';

const NAMES = ['from', 'to'];

export class InterpolationView {
  #ends;

  /** onActivate(slot): an end (0 from, 1 to) was clicked, to take the next pick. */
  constructor({ onActivate }) {
    this.#ends = [$('interp-from'), $('interp-to')];
    this.#ends.forEach((el, slot) => el.addEventListener('click', () => onActivate(slot)));
  }

  /** Shows test image `index` (a `label`, `pixels` its 784 values) at end `slot`. */
  showEnd(slot, { index, label, pixels }) {
    const el = this.#ends[slot];
    drawDigit(el.querySelector('canvas'), pixels, 0);
    el.querySelector('.interp-end-text').textContent = `${NAMES[slot]}: a ${label} (test image ${index})`;
    el.dataset.index = String(index);
    el.dataset.label = String(label);
  }

  /** Highlights the end the next pick goes to. */
  setActive(slot) {
    this.#ends.forEach((el, i) => {
      el.dataset.active = i === slot ? 'yes' : 'no';
      el.setAttribute('aria-pressed', String(i === slot));
    });
  }

  setError(text) {
    $('interp-error').textContent = text;
  }

  /** pixels: Float32Array count * 784 decoded between test images `ends`, or null to empty the strip. */
  showStrip(pixels, count = 0, ends = []) {
    const strip = $('interp-strip');
    strip.replaceChildren();
    for (let i = 0; pixels && i < count; i++) {
      const canvas = document.createElement('canvas');
      canvas.width = IMAGE_SIDE;
      canvas.height = IMAGE_SIDE;
      canvas.className = 'tile';
      drawDigit(canvas, pixels, i * IMAGE_PIXELS);
      strip.append(canvas);
    }
    strip.dataset.filled = pixels ? 'yes' : 'no';
    strip.dataset.ends = pixels ? ends.join(',') : '';
  }
}
