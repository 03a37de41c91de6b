"""A static file server on loopback that answers HTTP range requests, as
object stores and CDNs do (Python's http.server does not): fairway reads
parquet over HTTP(S) by ranges.

    python http_server.py DIRECTORY

Prints the port on one line, then serves until its standard input closes.
"""

import http.server
import os
import sys
import threading


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_head(self):
        spec = self.headers.get("Range")
        path = self.translate_path(self.path)
        if not spec or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        try:
            unit, ranges = spec.split("=", 1)
            start_text, end_text = ranges.split(",")[0].strip().split("-", 1)
            if unit.strip() != "bytes":
                raise ValueError(unit)
            if start_text == "":
                start = max(size - int(end_text), 0)
                end = size - 1
            else:
                start = int(start_text)
                end = min(int(end_text), size - 1) if end_text else size - 1
        except ValueError:
            self.send_error(400, "bad Range header")
            return None
        if start >= size or start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        f = open(path, "rb")
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Last-Modified", self.date_time_string(int(os.path.getmtime(path))))
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            chunk = source.read(min(65536, remaining))
            if not chunk:
                break
            outputfile.write(chunk)
            remaining -= len(chunk)
        self._remaining = None


def main() -> None:
    directory = sys.argv[1]
    handler = lambda *a, **k: RangeHandler(*a, directory=directory, **k)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
