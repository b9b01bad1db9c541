#!/usr/bin/env bash
# Re-extracts every string a visitor or agent sees into messages.pot and merges it into each
# language's catalog (new strings come in untranslated: tests/test_i18n.py then fails until
# they are translated). Needs Babel (pip install babel; a dependency of the desk).
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel -q extract -F babel.cfg --no-wrap --sort-by-file --project humandesk \
  --copyright-holder "humandesk contributors" --omit-header -o locale/messages.pot .
for lang in es pl is de fr; do
  po="locale/$lang/LC_MESSAGES/messages.po"
  if [ -f "$po" ]; then
    pybabel -q update --no-wrap --no-fuzzy-matching --ignore-obsolete \
      -i locale/messages.pot -d locale -l "$lang"
  else
    pybabel -q init --no-wrap -i locale/messages.pot -d locale -l "$lang"
  fi
done
