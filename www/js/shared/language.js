// The browser's language, made safe for Intl. A browser may report a language that is not a valid
// BCP 47 tag: WebKit reports "C" where the system's locale is LANG=C.UTF-8, the default of
// minimal Linux and container systems. Handing such a tag to Intl throws a RangeError, and uPlot
// (www/vendor) does that as its module loads, which would stop the whole page before it starts.
// main.js imports this module first, so every other module sees a valid language: the reported
// one where Intl accepts it, its valid entries of navigator.languages otherwise, else "en-US".

/** `tag` in canonical form if Intl accepts it, else null. */
export function validLanguage(tag) {
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? null;
  } catch {
    return null;
  }
}

/** The languages to report instead of `reported`, or null when all of them are valid. */
export function safeLanguages(reported) {
  const valid = reported.map(validLanguage);
  if (reported.length && valid.every(Boolean)) return null;
  const kept = [...new Set(valid.filter(Boolean))];
  return kept.length ? kept : ['en-US'];
}

const nav = globalThis.navigator;
if (nav) {
  const languages = safeLanguages(nav.languages?.length ? [...nav.languages] : [nav.language]);
  if (languages) {
    // On the navigator itself, in front of the prototype's getters: the page and its libraries
    // read navigator.language as usual and get a tag Intl accepts.
    Object.defineProperty(nav, 'language', { value: languages[0], configurable: true });
    Object.defineProperty(nav, 'languages', { value: Object.freeze(languages), configurable: true });
  }
}
