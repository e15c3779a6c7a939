// Sharing a run: the page opened from a link fills its form (and says so), the address follows
// the form as it changes, and "Copy link to this run" hands the link over. What a link holds and
// how its values are checked is link.js's; this module applies it to the page.
import { describeGiven, linkSearch, readLink } from './link.js';
import { app, page } from './state.js';

// The form as the page wrote it, before a link filled it: a page on these settings, opened
// without a link, keeps the address it was opened with.
let defaults = null;
let compareDefault = null;
// Set once the address carries the settings (a link gave some, or the form left its defaults).
let inAddress = false;

/**
 * Fills the form from the address the page was opened with; called once, before the page
 * starts, so that the first model is the link's. A bad value keeps its field's default and
 * shows the form's message for it (app.linkErrors, until that field is changed by hand). The
 * backend a link names is the page's start-up's to apply (app/backend.js reads the address).
 */
export function openLink() {
  const { view } = page;
  app.openedWith = globalThis.location.search;
  defaults = view.readFields();
  compareDefault = view.compareValue;
  const link = readLink(app.openedWith, defaults);
  for (const [field, text] of Object.entries(link.fields)) if (field !== 'backend') view.setField(field, text);
  if (link.compare !== null) view.compareValue = link.compare;
  app.linkErrors = { ...link.errors };
  view.showFieldErrors(app.linkErrors);
  view.showCompareError(link.compareError ?? '');
  const named = link.given.length > 0 || link.compare !== null || link.compareError !== null;
  if (!named) return;
  inAddress = true;
  const taken = describeGiven(link.fields);
  const refused = Object.keys(link.errors).length + (link.compareError ? 1 : 0);
  view.showLinkNote(
    (taken ? `Settings from the link: ${taken}.` : 'Settings from the link.') +
      (link.compare !== null ? ' Compare: the code sizes from the link.' : '') +
      (refused ? ` ${refused === 1 ? 'One value' : `${refused} values`} in it could not be used: the marked fields keep their defaults.` : '') +
      ' Nothing runs until you press Train.',
  );
}

/** A field changed by hand: the link's word on it no longer stands. */
export function changedByHand(field) {
  delete app.linkErrors[field];
  if (field === 'backend') app.backendByHand = true;
}

/** The link to the run the form describes, whole: every setting, whatever the address holds. */
export function runLink() {
  const { location } = globalThis;
  const search = linkSearch(page.view.readFields(), { compare: page.view.compareValue, backendByHand: app.backendByHand }, location.search);
  return `${location.origin}${location.pathname}${search}`;
}

/**
 * Writes the form's settings into the address (history.replaceState: no new history entry, no
 * reload), once they differ from the page's defaults or came from a link; called whenever a
 * field changes, by hand or by the page.
 */
export function keepAddressInStep() {
  if (!defaults) return;
  const { view } = page;
  const fields = view.readFields();
  inAddress ||=
    app.backendByHand ||
    view.compareValue !== compareDefault ||
    Object.keys(defaults).some((f) => f !== 'backend' && fields[f] !== defaults[f]);
  const { history, location } = globalThis;
  if (inAddress) {
    const search = linkSearch(fields, { compare: view.compareValue, backendByHand: app.backendByHand }, location.search);
    if (search !== location.search) history.replaceState(history.state, '', `${search}${location.hash}`);
  }
  view.updateRunLink(runLink());
}

/**
 * Copy link to this run: shows the link in a field, selected, and puts it on the clipboard where
 * the browser allows; where it does not, the field is there to copy it from.
 */
export async function copyLink() {
  const link = runLink();
  page.view.showRunLink(link, 'copying');
  try {
    if (!globalThis.navigator.clipboard?.writeText) throw new Error('no clipboard');
    await globalThis.navigator.clipboard.writeText(link);
    page.view.showRunLink(link, 'copied');
  } catch {
    page.view.showRunLink(link, 'select');
  }
}
