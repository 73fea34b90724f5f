#!/usr/bin/env python3
"""Every word a text report prints is in the glossary of docs/analyzer.md.

usage: glossary.py docs/analyzer.md REPORT.text REPORT.json [REPORT.text REPORT.json ...]

The glossary is the section "## Glossary": its terms are the bold heads
(**term**) of its entries.  From each text report the words that come from
the logs and the programs (commands, paths, functions, files, modules,
policies: those strings of the JSON report of the same logs) are set aside,
and the warnings' own text (what the shim and the reader said, quoted); the
rest, less a few English function words, must each be a word of a term.
Exit 1 listing the words that are not, with a line where each appears.
"""
import json
import re
import sys

import bigjson

# Words that carry no term of their own (articles, prepositions, conjunctions and the like).
FUNCTION_WORDS = set("""
a an the of in at by and or to from for with on its it is are was be been not no more all other
than as that this each per one two into out up down if then else when where which who what there
their his her these those some any only also but so above below after before until since
""".split())

WORD = re.compile(r"[0-9]*[A-Za-z][A-Za-z0-9'-]*")


def norm(w):
    w = w.lower().strip("'-")
    for suffix in ("ies", "s"):
        if w.endswith(suffix) and len(w) > len(suffix) + 2:
            return w[:-len(suffix)] + ("y" if suffix == "ies" else "")
    return w


def glossary_terms(md):
    text = open(md, encoding="utf-8").read()
    m = re.search(r"^## Glossary\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        raise SystemExit("%s: no '## Glossary' section" % md)
    words = set()
    for head in re.findall(r"\*\*(.+?)\*\*", m.group(1), re.S):
        for w in WORD.findall(head):
            words.add(norm(w))
    return words


# The JSON fields whose strings come from the logs and the programs, not from pfshim.
DATA_KEYS = {"command", "argv", "exe", "exec_path", "log", "function", "file", "module", "module_path",
             "source_path", "policy", "comm", "site", "symbol"}


def strings(o, out, take=False):
    if isinstance(o, str):
        if take:
            out.add(o)
    elif isinstance(o, dict):
        for k, v in o.items():
            strings(v, out, take or k in DATA_KEYS)
    elif isinstance(o, list):
        for v in o:
            strings(v, out, take)


def data_words(js):
    """Words of the report's strings from the logs (commands, paths, frames, policies)."""
    s = set()
    strings(json.load(open(js, encoding="utf-8")), s)
    words = set()
    for x in s:
        for w in WORD.findall(x):
            words.add(w.lower())
    return words


def report_words(path, data):
    """(word, line) for the report's own words."""
    out = []
    in_warnings = False
    for line in open(path, encoding="utf-8", errors="replace"):
        line = line.rstrip("\n")
        if line.startswith("# Warnings ("):
            in_warnings = True
            body = line
        elif in_warnings:
            continue  # the warnings' text: the shim's and the reader's messages
        else:
            body = line
        # a frame line: the frame is data; its markers are not
        if re.match(r"^ {12}\S.*\[[^\]]*\]( \(inlined\))?$", body):
            body = "(inlined)" if body.endswith("(inlined)") else ""
        # quoted globs: data; a rate's unit: words; paths, identifiers, addresses, file names: data
        body = re.sub(r"'[^']*'", " ", body)
        for tok in body.split():
            t = tok.strip("()[],;:#")
            if re.fullmatch(r"[0-9.]*[kMG]?/s", t):
                t = t.replace("/", " ")
            elif re.fullmatch(r"[0-9.]+[a-z]+", t):  # a time with its unit: 0.5s
                t = t.lstrip("0123456789.")
            elif "/" in t or "_" in t or "0x" in t or "=" in t or re.search(r"[A-Za-z]\.[A-Za-z]", t):
                continue
            for w in WORD.findall(t):
                if w.lower() in data:
                    continue
                out.append((w, line))
    return out


def main():
    bigjson.reexec_if_big(*[p for p in sys.argv[2:] if p.endswith(".json")])
    md = sys.argv[1]
    terms = glossary_terms(md)
    missing = {}
    pairs = sys.argv[2:]
    total = 0
    for i in range(0, len(pairs), 2):
        data = data_words(pairs[i + 1])
        for w, line in report_words(pairs[i], data):
            total += 1
            n = norm(w)
            if n in terms or w.lower() in FUNCTION_WORDS:
                continue
            missing.setdefault(n, (w, pairs[i], line))
    print("%d words checked against %d glossary words" % (total, len(terms)))
    for n, (w, path, line) in sorted(missing.items()):
        print("  not in the glossary: %r (%s: %s)" % (w, path.rsplit("/", 1)[-1], line.strip()[:100]))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
