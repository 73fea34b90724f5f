#!/usr/bin/env python3
"""Checks a screenshot of `pfshim report --format svg` as Chromium drew it.

usage: svgshot.py REPORT.svg SHOT.png

Decodes the PNG with zlib (8-bit RGB or RGBA, non-interlaced), finds the
first plot panel in the SVG (the rect filled #f8f8f8) and the storm
rectangles, and requires that inside the panel the rate line (#1f77b4,
blue) drew pixels, that inside the first storm rectangle its shading
(#d62728 at opacity 0.2 over the panel) appears, and that the site bars
(#ff7f0e) appear below.  Exit 1 with what was missing.
"""
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

NS = "{http://www.w3.org/2000/svg}"


def read_png(path):
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit("not a PNG: %s" % path)
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            if depth != 8 or ctype not in (2, 6) or interlace:
                raise SystemExit("PNG kind not handled: depth %d colour type %d interlace %d" % (depth, ctype, interlace))
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, bpp, rows


def near(px, rgb, tol):
    return all(abs(px[i] - rgb[i]) <= tol for i in range(3))


def count(img, box, pred):
    w, h, bpp, rows = img
    x0, y0, x1, y1 = (int(v) for v in box)
    n = 0
    for y in range(max(y0, 0), min(y1, h)):
        r = rows[y]
        for x in range(max(x0, 0), min(x1, w)):
            if pred(r[x * bpp:x * bpp + 3]):
                n += 1
    return n


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
    drawn = count(img, inner, lambda p: not near(p, (0xf8, 0xf8, 0xf8), 3) and not near(p, (255, 255, 255), 3))
    blue = count(img, inner, lambda p: near(p, (0x1f, 0x77, 0xb4), 60) and p[2] > p[0] + 60)
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
