#!/usr/bin/env python3
"""Checks a screenshot of `pfshim report --format svg` as Chromium drew it.

usage: svgshot.py REPORT.svg SHOT.png

Reads the PNG with Pillow (Debian's python3-pil, make check installs it), finds the
first plot panel in the SVG (the rect filled #f8f8f8) and the storm
rectangles, and requires that inside the panel the rate line (#1f77b4,
blue) drew pixels, that inside the first storm rectangle its shading
(#d62728 at opacity 0.2 over the panel) appears, and that the site bars
(#ff7f0e) appear below.  Exit 1 with what was missing.
"""
import sys
import xml.etree.ElementTree as ET

import numpy
from PIL import Image

NS = "{http://www.w3.org/2000/svg}"


def read_png(path):
    """The screenshot as (width, height, pixels): an array of rows of (r, g, b)."""
    try:
        px = numpy.asarray(Image.open(path).convert("RGB"), dtype=numpy.int16)
    except OSError as e:
        raise SystemExit("not a PNG: %s (%s)" % (path, e))
    return px.shape[1], px.shape[0], px


def near(px, rgb, tol):
    """Which pixels of px are within tol of rgb in each channel."""
    return (abs(px - numpy.array(rgb, dtype=numpy.int16)) <= tol).all(axis=-1)


def count(img, box, pred):
    """How many pixels inside box (x0, y0, x1, y1) pred holds for (pred: pixels -> booleans)."""
    w, h, px = img
    x0, y0, x1, y1 = (int(v) for v in box)
    part = px[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    return int(pred(part).sum())


def main():
    svg, png = sys.argv[1], sys.argv[2]
    root = ET.parse(svg).getroot()
    rects = list(root.iter(NS + "rect"))
    panel = next(r for r in rects if r.get("fill") == "#f8f8f8")
    storms = [r for r in rects if r.get("class") == "storm"]
    box = lambda r: (float(r.get("x")), float(r.get("y")), float(r.get("x")) + float(r.get("width")),
                     float(r.get("y")) + float(r.get("height")))
    img = read_png(png)
    problems = []
    inner = box(panel)
    inner = (inner[0] + 2, inner[1] + 2, inner[2] - 2, inner[3] - 2)
    # neither the panel's background nor white (a page that drew nothing)
    drawn = count(img, inner, lambda p: ~near(p, (0xf8, 0xf8, 0xf8), 3) & ~near(p, (255, 255, 255), 3))
    blue = count(img, inner, lambda p: near(p, (0x1f, 0x77, 0xb4), 60) & (p[..., 2] > p[..., 0] + 60))
    print("panel %s: %d drawn pixels, %d of the rate line" % (inner, drawn, blue))
    if drawn < 500:
        problems.append("the plot area is (nearly) blank")
    if blue < 20:
        problems.append("the rate line (#1f77b4) is not drawn in the plot area")
    if not storms:
        problems.append("the SVG marks no storm")
    else:
        sb = box(storms[0])
        # #d62728 at 0.2 over #f8f8f8 is about (241, 206, 206)
        shade = count(img, (sb[0] + 1, sb[1] + 1, sb[2] - 1, sb[3] - 1),
                      lambda p: near(p, (241, 206, 206), 12))
        # the storm's number, in the marker colour itself (anti-aliased text: a loose match)
        red = count(img, (0, 0, img[0], img[1]), lambda p: near(p, (0xd6, 0x27, 0x28), 70))
        print("storm %s: %d shaded pixels; %d pixels of the storm colour in all" % (sb, shade, red))
        if shade < (sb[2] - sb[0]) * (sb[3] - sb[1]) / 10:
            problems.append("the storm's shading is not drawn")
        if red < 1:
            problems.append("the storm marker colour #d62728 does not appear")
    bars = count(img, (0, inner[3], img[0], img[1]), lambda p: near(p, (0xff, 0x7f, 0x0e), 30))
    print("site bars: %d pixels" % bars)
    if bars < 50:
        problems.append("the site bars (#ff7f0e) are not drawn")
    for p in problems:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
