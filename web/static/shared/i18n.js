/* The page's language: its catalog (inlined by the server as JSON in #hd-catalog, made from the
 * same Babel catalogs as the templates: web/i18n.py), `_` and `ngettext` to translate, and the
 * locale for Intl formatting. Without a catalog (English, or Node's tests) the words are the
 * source's. Only string literals go into `_`/`ngettext` (Babel extracts them); "{name}" marks
 * what `vars` fill in. */

let current = { lang: "en", messages: {}, plurals: {} };
let plurals = new Intl.PluralRules("en");

/** Use `data` ({lang, messages, plurals}) from now on. */
export function setCatalog(data) {
  current = { lang: "en", messages: {}, plurals: {}, ...(data || {}) };
  plurals = new Intl.PluralRules(current.lang);
}

function fill(text, vars) {
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** `msgid` in the page's language, "{name}"s filled from `vars`. */
export function _(msgid, vars) {
  return fill(current.messages[msgid] || msgid, vars);
}

/** The form of `singular`/`plural` for the count `n` ("{n}" is filled with it, as are `vars`). */
export function ngettext(singular, plural, n, vars) {
  const forms = current.plurals[singular];
  const text = forms ? forms[plurals.select(n)] || forms.other : n === 1 ? singular : plural;
  return fill(text, { n: formatNumber(n), ...(vars || {}) });
}

/** The page's language ("en", "pl"…), for Intl. */
export function locale() {
  return current.lang;
}

/** `n` as the page's language writes numbers. */
export function formatNumber(n) {
  return typeof n === "number" ? new Intl.NumberFormat(current.lang).format(n) : String(n);
}

/* In a page: the catalog the server inlined. */
if (typeof document !== "undefined") {
  const node = document.getElementById("hd-catalog");
  if (node) {
    try {
      setCatalog(JSON.parse(node.textContent));
    } catch (_err) {
      /* the source's words */
    }
  }
}
