#!/usr/bin/env python3
"""The documentation cannot rot: README.md and docs/*.md are checked against the tree and the tool.

- every relative link (README, docs/) names a file or folder that exists;
- every cutrain-train command in a ```sh block, and every flag docs/command-line.md mentions,
  uses only flags `cutrain-train --help` lists (a renamed or removed flag fails here);
- README.md stays a front door: at most 150 lines;
- the pages describe the project, not how it was worked on: no "session" or "lent machine".

usage: docs_test.py CUTRAIN_TRAIN_BINARY"""
import pathlib
import re
import subprocess
import sys

root = pathlib.Path(__file__).resolve().parents[2]
pages = [root / "README.md", root / "bench" / "RESULTS.md"] + sorted((root / "docs").glob("*.md"))
failures = []

help_text = subprocess.run([sys.argv[1], "--help"], capture_output=True, text=True,
                           check=True).stdout
known = set(re.findall(r"(--[a-z][a-z0-9-]*)", help_text))
if len(known) < 50:
    sys.exit(f"docs_test: only {len(known)} flags found in --help")

link = re.compile(r"\[[^\]]*\]\(([^)\s#]+)(?:#[^)]*)?\)")
flag = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")

for page in pages:
    text = page.read_text()
    name = page.relative_to(root)
    for target in link.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        if not (page.parent / target).exists():
            failures.append(f"{name}: link to '{target}', which does not exist")
    # cutrain-train command lines in sh blocks (continuation lines joined, comments dropped)
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = line.split("#", 1)[0].split()
            for i, w in enumerate(words):
                if w.endswith("cutrain-train"):
                    for f in flag.findall(" ".join(words[i + 1:])):
                        if f not in known:
                            failures.append(f"{name}: '{line.strip()[:60]}...' uses {f}, "
                                            "which cutrain-train --help does not list")
                    break
    for m in re.finditer(r"\b(sessions?|lent (GPU )?machines?)\b", text, re.I):
        line = text.count("\n", 0, m.start()) + 1
        failures.append(f"{name}:{line}: '{m.group(0)}' - name the machine and the commit instead")
    if page.name == "command-line.md":
        for f in sorted(set(flag.findall(text))):
            if f not in known:
                failures.append(f"{name}: mentions {f}, which cutrain-train --help does not list")

readme_lines = len((root / "README.md").read_text().splitlines())
if readme_lines > 150:
    failures.append(f"README.md has {readme_lines} lines; keep it a front door (<= 150)")

for f in failures:
    print("FAIL:", f)
print(f"docs: {len(pages)} pages, {len(known)} flags known" + ("" if failures else ": ok"))
sys.exit(1 if failures else 0)
