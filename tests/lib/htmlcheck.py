#!/usr/bin/env python3
"""Checks `pfshim report --format html` as headless Chromium left it.

usage: htmlcheck.py page.html DOM.html top LABEL [SHOT.png]
       htmlcheck.py page.html DOM.html sorted KEY asc|desc

page.html is the file pfshim wrote, DOM.html the document after Chromium ran
its script (--dump-dom).  `top`: the page loads nothing (no src or href, no
url() or @import) and forbids loads (its Content-Security-Policy), the table's first row is labelled LABEL, the
flame graph holds a frame named LABEL, and in SHOT.png (a screenshot) that
frame's colour covers a bar.  `sorted`: the column KEY is marked sorted that
way and its values run so.  Exit 1 with what was wrong.
"""
import html.parser
import os
import re
import sys


class Page(html.parser.HTMLParser):
    """The site table's columns and rows (cell values: data-v, else the text), the flame frames."""

    def __init__(self):
        super().__init__()
        self.cols, self.sort, self.rows, self.frames = [], None, [], {}
        self.cell = self.row = None
        self.in_label = False
        self.label_text = ""
        self.flame_g = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "th" and "data-key" in a:
            self.cols.append(a["data-key"])
            if a.get("aria-sort"):
                self.sort = (a["data-key"], "asc" if a["aria-sort"] == "ascending" else "desc")
        elif tag == "tr" and "data-rank" in a:
            self.row = {"cells": [], "label": None}
        elif tag == "td" and self.row is not None:
            self.cell = {"v": a.get("data-v"), "text": ""}
        elif tag == "span" and a.get("class") == "label" and self.row is not None and self.row["label"] is None:
            self.in_label, self.label_text = True, ""
        elif tag == "g" and "data-n" in a:
            self.flame_g = a["data-n"]
        elif tag == "rect" and self.flame_g is not None:
            self.frames.setdefault(self.flame_g, a.get("fill"))
            self.flame_g = None

    def handle_endtag(self, tag):
        if tag == "span" and self.in_label:
            self.row["label"], self.in_label = self.label_text, False
        elif tag == "td" and self.cell is not None:
            self.row["cells"].append(self.cell["v"] if self.cell["v"] is not None else self.cell["text"].strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data
        if self.in_label:
            self.label_text += data


def main():
    page_path, dom_path, what = sys.argv[1:4]
    raw = open(page_path, encoding="utf-8").read()
    dom = Page()
    dom.feed(open(dom_path, encoding="utf-8").read())
    problems = []
    if not dom.rows:
        problems.append("no site rows in the document Chromium built")
    if what == "top":
        label = sys.argv[4]
        # nothing that would load: no src or href attribute, no url() or @import in a style
        loads = re.findall(r"\b(?:src|href)\s*=\s*\S+|url\([^)]*\)|@import\s+\S+", raw)
        if loads:
            problems.append("the page would load something: %s" % loads[:3])
        if not re.search(r"<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';", raw):
            problems.append("no Content-Security-Policy forbidding loads")
        first = dom.rows[0]["label"] if dom.rows else None
        print("first row: %s; %d rows; flame frames: %d" % (first, len(dom.rows), len(dom.frames)))
        if first != label:
            problems.append("the first row is %r, not %r" % (first, label))
        if label not in dom.frames:
            problems.append("the flame graph has no frame %r" % label)
        elif len(sys.argv) > 5:
            fill = dom.frames[label]
            rgb = tuple(int(fill[i:i + 2], 16) for i in (1, 3, 5))
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            from svgshot import count, near, read_png
            img = read_png(sys.argv[5])
            n = count(img, (0, 0, img[0], img[1]), lambda p: near(p, rgb, 2))
            print("flame frame %s drawn in %s: %d pixels" % (label, fill, n))
            if n < 2000:
                problems.append("the flame graph's %s frame (%s) is not drawn" % (label, fill))
    elif what == "sorted":
        key, way = sys.argv[4], sys.argv[5]
        if dom.sort != (key, way):
            problems.append("the table is marked sorted by %s, not %s-%s" % (dom.sort, key, way))
        k = dom.cols.index(key)
        vals = [r["cells"][k] for r in dom.rows]
        try:
            vals = [float(v) for v in vals]
        except ValueError:
            pass
        print("%s %s: %s" % (key, way, vals[:8]))
        if vals != sorted(vals, reverse=(way == "desc")):
            problems.append("column %s does not run %s: %s" % (key, way, vals))
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
