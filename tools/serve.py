"""Serves www/ on 127.0.0.1 with the page's Content-Security-Policy also sent as a header.

    python3 tools/serve.py PORT DIRECTORY

The policy is written once, as the <meta> tag in index.html, so it holds on any static host. The
header repeats it for every file (the worker's script too) and adds what a meta tag cannot say:
frame-ancestors. Python's server maps .wasm to application/wasm, which
WebAssembly.instantiateStreaming requires; .webmanifest is added as application/manifest+json.
"""

import functools
import http.server
import pathlib
import re
import sys


def page_policy(directory):
    html = (pathlib.Path(directory) / "index.html").read_text(encoding="utf-8")
    found = re.search(r'http-equiv="Content-Security-Policy"\s+content="([^"]+)"', html)
    if not found:
        sys.exit(f"error: {directory}/index.html has no Content-Security-Policy meta tag")
    return found.group(1) + "; frame-ancestors 'none'"


class Handler(http.server.SimpleHTTPRequestHandler):
    policy = ""
    # Python's table has no entry for the web app manifest.
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, ".webmanifest": "application/manifest+json"}

    def end_headers(self):
        self.send_header("Content-Security-Policy", self.policy)
        self.send_header("X-Content-Type-Options", "nosniff")
        super().end_headers()


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    Handler.policy = page_policy(directory)
    handler = functools.partial(Handler, directory=directory)
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
