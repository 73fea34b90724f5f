#!/usr/bin/env python3
"""Several pages through one headless Chromium (the tests' browser; each start costs seconds).

usage: chromium_pages.py LOG dom URL OUT [dom URL OUT ...] [shot WIDTHxHEIGHT URL OUT ...]

Starts `chromium --headless` once (no sandbox, no GPU, no network: a proxy nobody answers;
its profile in $HOME, its messages in LOG) and drives it through the DevTools protocol on a
pipe (--remote-debugging-pipe).  Each page is a fresh load (about:blank between two), and
what is written is what the one-shot switches give:
  dom:  the document after the page's script ran at its load (--dump-dom) into OUT;
  shot: a PNG of the page in a window WIDTHxHEIGHT without scroll bars (--window-size,
        --hide-scrollbars, --screenshot) into OUT.
Exit 1 with LOG's last lines when Chromium fails or a page does not load in 60 s.
"""
import base64
import fcntl
import json
import os
import select
import subprocess
import sys
import time

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--no-first-run", "--proxy-server=127.0.0.1:9", "--remote-debugging-pipe"]
# what --dump-dom prints
DOM = ("(document.doctype ? new XMLSerializer().serializeToString(document.doctype) + '\\n' : '')"
       " + document.documentElement.outerHTML")


class Browser:
    def __init__(self, log):
        to_r, to_w = os.pipe()
        from_r, from_w = os.pipe()
        # above the descriptors the child gets as 3 and 4
        to_r, from_w = (fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_r, from_w))

        def fds():
            os.dup2(to_r, 3)
            os.dup2(from_w, 4)

        self.log = log
        self.proc = subprocess.Popen(["chromium"] + FLAGS + ["about:blank"], stdin=subprocess.DEVNULL,
                                     stdout=open(log, "wb"), stderr=subprocess.STDOUT,
                                     preexec_fn=fds, pass_fds=(3, 4))
        self.out, self.inp = os.fdopen(to_w, "wb"), from_r
        self.buf, self.events, self.n = b"", [], 0

    def fail(self, why):
        print("  chromium: %s; its last lines:" % why)
        try:
            for line in open(self.log, errors="replace").read().splitlines()[-5:]:
                print("  " + line)
        except OSError:
            pass
        self.proc.kill()
        sys.exit(1)

    def message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.inp], [], [], left)[0]:
                self.fail("no answer in time")
            got = os.read(self.inp, 1 << 20)
            if not got:
                self.fail("it exited (status %s)" % self.proc.wait())
            self.buf += got
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, session=None, **params):
        self.n += 1
        cmd = {"id": self.n, "method": method, "params": params}
        if session:
            cmd["sessionId"] = session
        self.out.write(json.dumps(cmd).encode() + b"\0")
        self.out.flush()
        deadline = time.monotonic() + 60
        while True:
            m = self.message(deadline)
            if m.get("id") == self.n:
                if "error" in m:
                    self.fail("%s: %s" % (method, m["error"]))
                return m["result"]
            self.events.append(m)

    def wait_event(self, method, session):
        deadline = time.monotonic() + 60
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and m.get("sessionId") == session:
                    del self.events[i]
                    return m
            self.events.append(self.message(deadline))

    def load(self, session, url):
        """A fresh load of url: to about:blank first, so that a fragment is no same-page jump."""
        for u in ("about:blank", url):
            self.events.clear()
            self.call("Page.navigate", session, url=u)
            self.wait_event("Page.loadEventFired", session)

    def close(self):
        try:
            self.call("Browser.close")
        except SystemExit:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main():
    log, args = sys.argv[1], sys.argv[2:]
    b = Browser(log)
    page = [t for t in b.call("Target.getTargets")["targetInfos"] if t["type"] == "page"][0]
    s = b.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
    b.call("Page.enable", s)
    while args:
        if args[0] == "dom" and len(args) >= 3:
            url, out, args = args[1], args[2], args[3:]
            b.load(s, url)
            r = b.call("Runtime.evaluate", s, expression=DOM, returnByValue=True)
            with open(out, "w") as f:
                f.write(r["result"]["value"] + "\n")
        elif args[0] == "shot" and len(args) >= 4:
            w, h = (int(v) for v in args[1].split("x"))
            url, out, args = args[2], args[3], args[4:]
            b.call("Emulation.setDeviceMetricsOverride", s, width=w, height=h, deviceScaleFactor=1,
                   mobile=False)
            b.call("Emulation.setScrollbarsHidden", s, hidden=True)
            b.load(s, url)
            r = b.call("Page.captureScreenshot", s, format="png")
            with open(out, "wb") as f:
                f.write(base64.b64decode(r["data"]))
            b.call("Emulation.clearDeviceMetricsOverride", s)
            b.call("Emulation.setScrollbarsHidden", s, hidden=False)
        else:
            print(__doc__.split("\n\n")[1])
            return 2
    b.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
