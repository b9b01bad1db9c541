/* The staff pages' language chooser (the console, its sign-in form, the wallboard): the choice
 * goes into a cookie the desk reads to pick the language of these pages, then the page loads
 * again in it. The pages' words come from the server (templates, the inlined catalog), so a
 * reload is what switches them all. */

/** The cookie the desk reads (server/app.py LANGUAGE_COOKIE). */
export const LANGUAGE_COOKIE = "humandesk_lang";
const A_YEAR_S = 365 * 24 * 60 * 60;
const CODE = /^[a-z]{2,3}$/;

/** The cookie that keeps `code` for a year on every page of the desk ("" for a code that is not one). */
export function languageCookie(code) {
  if (!CODE.test(String(code))) return "";
  return `${LANGUAGE_COOKIE}=${code}; path=/; max-age=${A_YEAR_S}; SameSite=Lax`;
}

/**
 * Wires the chooser(s) of the page (`select[data-language-chooser]`): a choice sets the
 * cookie and reloads the page. `reload` and `doc` are for tests.
 */
export function wireLanguageChooser(doc = document, reload = () => location.reload()) {
  for (const select of doc.querySelectorAll("select[data-language-chooser]")) {
    const current = select.value;
    select.addEventListener("change", () => {
      const cookie = languageCookie(select.value);
      if (!cookie || select.value === current) return;
      doc.cookie = cookie;
      select.disabled = true; // until the page comes back in the new language
      reload();
    });
  }
}
