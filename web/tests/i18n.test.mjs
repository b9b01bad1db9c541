/* The page's language: a catalog as the server inlines it, plural forms by CLDR category,
 * placeholders, and numbers, dates and places in line written the page's way. */

import assert from "node:assert/strict";
import { test } from "node:test";

import { countOf, deskReason, formatDateTime, formatEta, ordinal } from "../static/shared/format.js";
import { _, locale, ngettext, setCatalog } from "../static/shared/i18n.js";

test("without a catalog: the source's words", () => {
  assert.equal(_("Connecting to {name}…", { name: "Ana" }), "Connecting to Ana…");
  assert.equal(ngettext("{n} minute", "{n} minutes", 1), "1 minute");
  assert.equal(ngettext("{n} minute", "{n} minutes", 5), "5 minutes");
  assert.equal(ordinal(22), "22nd");
});

test("Polish: three plural forms, picked by Intl.PluralRules", () => {
  setCatalog({
    lang: "pl",
    messages: { "Connecting to {name}…": "Łączenie z {name}…" },
    plurals: { "{n} minute": { one: "{n} minuta", few: "{n} minuty", many: "{n} minut" } },
  });
  assert.equal(locale(), "pl");
  assert.equal(_("Connecting to {name}…", { name: "Ewa" }), "Łączenie z Ewa…");
  const forms = [1, 2, 4, 5, 12, 22, 25, 101].map((n) => countOf(n, "minute"));
  assert.deepEqual(forms, ["1 minuta", "2 minuty", "4 minuty", "5 minut", "12 minut", "22 minuty", "25 minut", "101 minut"]);
  assert.equal(ordinal(3), "3.");
  assert.equal(_("not in the catalog"), "not in the catalog");
  // Dates in the page's language (Polish month names).
  assert.match(formatDateTime(Date.UTC(2026, 11, 1, 12, 0), undefined, "UTC"), /gru/);
});

test("why the desk put an agent on Break or Offline, in the page's language", () => {
  setCatalog({
    lang: "pl",
    messages: { "Connection lost": "Utracono połączenie" },
    plurals: {
      "Missed {n} offer in a row": { one: "Pominięto {n} ofertę z rzędu", few: "Pominięto {n} oferty z rzędu", many: "Pominięto {n} ofert z rzędu" },
    },
  });
  const missed = (n) => deskReason({ reason: `Missed ${n} offers in a row`, reason_code: "missed_offers", missed: n });
  assert.deepEqual([1, 3, 5].map(missed), ["Pominięto 1 ofertę z rzędu", "Pominięto 3 oferty z rzędu", "Pominięto 5 ofert z rzędu"]);
  assert.equal(deskReason({ reason: "Connection lost", reason_code: "connection_lost" }), "Utracono połączenie");
  assert.equal(deskReason({ reason: "" }), ""); // the agent's own choice
  setCatalog(null);
});

test("Icelandic: 21 takes the singular", () => {
  setCatalog({ lang: "is", messages: {}, plurals: { "about {n} minute": { one: "um {n} mínútu", other: "um {n} mínútur" } } });
  assert.equal(formatEta(21 * 60), "um 21 mínútu");
  assert.equal(formatEta(11 * 60), "um 11 mínútur");
});
