#!/usr/bin/env python3
"""A webhook receiver speaking HTTPS, for tests/api/notify.rs: Python's http.server behind TLS
with the certificate the test issued. Each POST is answered 204 and saved as one JSON file in
DIR/ (written as DIR/.tmp-N, then renamed): its path, headers, body and TLS version.

Usage: https_receiver.py PORT DIR CERT KEY
"""

import http.server
import json
import os
import ssl
import sys


def main():
    port, folder, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    count = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            count[0] += 1
            record = {
                "path": self.path,
                "tls": self.connection.version(),
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8"),
            }
            tmp = os.path.join(folder, f".tmp-{count[0]}")
            with open(tmp, "w") as f:
                json.dump(record, f)
            os.rename(tmp, os.path.join(folder, f"{count[0]}.json"))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with open(os.path.join(folder, "ready"), "w") as f:
        f.write(str(port))
    server.serve_forever()


if __name__ == "__main__":
    main()
