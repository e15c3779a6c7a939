// The model's code in words, for the facts (app/codefacts.js) and compare mode's conclusion
// (views/compare.js): its size, what follows the code layer, and what its dead numbers mean.
const ACTIVATION_NAMES = { linear: 'linear', relu: 'ReLU' };

/** "3 numbers (ReLU), 3 dead"; `dead` null while unknown. */
export function codeText(units, activation, dead) {
  const name = ACTIVATION_NAMES[activation];
  return `${units} numbers${name ? ` (${name})` : ''}${dead == null ? '' : `, ${dead} dead`}`;
}

/**
 * What a dead code means for this model, or '' when nothing is dead (or not known yet). With
 * every number dead: that the model can only output the average digit, why, and what to do.
 */
export function deadCodeNote({ model, units, dead }) {
  if (!dead) return '';
  if (dead < units) {
    return (
      `${dead} of the ${units} code numbers are dead: 0 for every test digit, since the ReLU after the ` +
      `code switches them off for every image. The model reconstructs from the other ${units - dead}.`
    );
  }
  const instead = model === 'dense' ? 'choose the linear code, or press Train with another seed' : 'press Train with another seed';
  return (
    `The code died: all ${units} code numbers are 0 for every test digit, so the decoder gets the same code ` +
    'whatever the image and this model can only output the average digit (its test MSE stays near 0.067, ' +
    "the average digit's: the seed's dense figure, a lowest training loss of 0.0688, sits on this plateau). " +
    'Why: a ReLU follows the code layer, and the model started badly: no image switches any code number ' +
    'on, so no gradient flows back through the code and the encoder never learns. ' +
    `What to do: ${instead}.`
  );
}

/** One sentence for compare mode's conclusion about a model's dead code, or '' when none is. */
export function deadCodeSentence(name, { units, dead }) {
  if (!dead) return '';
  if (dead < units) return `${dead} of the ${name} model's ${units} code numbers are dead (0 for every test digit).`;
  return (
    `The ${name} model's code died: all ${units} of its numbers are 0 for every test digit (a ReLU on the code ` +
    'and a start where no image switched any of them on, so no gradient flows back), and it outputs the ' +
    'average digit whatever the input. Its test MSE is the mean digit\'s, not what its architecture can do: ' +
    'train it with another seed or the linear code to compare the architectures.'
  );
}
