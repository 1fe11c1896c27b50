#!/usr/bin/env python3
"""Checks Doxygen's warnings for the public headers against docs/api-undocumented.txt.

Any warning that the list does not hold fails (a new public symbol without a `///` comment, a
broken doc comment); so does a listed entry Doxygen no longer reports (it has been documented:
delete its line, so the list only shrinks). Entries are the warnings without line numbers.

usage: api_docs_check.py BUILD/docs/warnings.txt SOURCE_ROOT"""
import pathlib
import re
import sys

warnings_path, given = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
root = given.resolve()
listed_path = root / "docs" / "api-undocumented.txt"


def normalize(line):
    for prefix in {str(given.absolute()), str(root)}:  # the checkout as given, and resolved
        line = line.replace(prefix + "/", "")
    return re.sub(r"^([^:]+):\d+: warning: ", r"\1: ", line).strip()


found = {normalize(l) for l in warnings_path.read_text().splitlines() if ": warning: " in l}
listed = {l.strip() for l in listed_path.read_text().splitlines()
          if l.strip() and not l.startswith("#")}
new, gone = sorted(found - listed), sorted(listed - found)
for w in new:
    print(f"api docs: {w}")
for w in gone:
    print(f"api docs: now documented, delete from docs/api-undocumented.txt: {w}")
print(f"api docs: {len(found)} warnings, {len(listed)} listed, {len(new)} new, {len(gone)} gone")
sys.exit(1 if new or gone else 0)
