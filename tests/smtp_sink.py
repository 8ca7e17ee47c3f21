#!/usr/bin/env python3
"""A real SMTP server for the notice tests (tests/api/notify.rs), on Debian's aiosmtpd.

Every message it accepts is saved as one file in DIR/new/ (Maildir style: written in DIR/tmp/,
then renamed), and decoded (headers, text and HTML parts) as JSON in DIR/json/; every step is appended to DIR/log: `received <Message-ID>`, `held`,
`abandoned`, `accepted`.

With --hold REGEX, the first message whose text matches REGEX is held for --hold-seconds before
the server answers the end of its DATA: the test kills the client meanwhile. A message is saved
only when the server answers 250, as the client is still there to hear it; if the client goes
away first, aiosmtpd cancels the handler and the message is `abandoned` (not delivered), as an
MTA that commits a message when it acknowledges it does.

With --tls-cert CERT --tls-key KEY, it speaks TLS: `--tls-mode starttls` (the default) offers
STARTTLS and refuses MAIL before it; `--tls-mode implicit` is TLS from the first byte (smtps).
Each saved message records the TLS version it came over (`tls`, null when in clear).

Usage: smtp_sink.py PORT DIR [--hold REGEX] [--hold-seconds N]
                    [--tls-cert CERT --tls-key KEY [--tls-mode starttls|implicit]]
"""

import argparse
import asyncio
import email
import os
import json
import re
import ssl
from email import policy

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, folder, hold, hold_seconds):
        self.folder = folder
        self.hold = re.compile(hold.encode()) if hold else None
        self.hold_seconds = hold_seconds
        self.held = False
        self.count = 0
        for sub in ("tmp", "new", "json"):
            os.makedirs(os.path.join(folder, sub), exist_ok=True)

    def log(self, line):
        with open(os.path.join(self.folder, "log"), "a") as f:
            f.write(line + "\n")

    async def handle_DATA(self, server, session, envelope):
        data = envelope.original_content or envelope.content
        if isinstance(data, str):
            data = data.encode()
        message_id = email.message_from_bytes(data).get("Message-ID", "")
        self.log(f"received {message_id}")
        if self.hold and not self.held and self.hold.search(data):
            self.held = True
            self.log(f"held {message_id}")
            try:
                await asyncio.sleep(self.hold_seconds)
            except asyncio.CancelledError:
                self.log(f"abandoned {message_id}")
                raise
        self.count += 1
        name = f"{os.getpid()}-{self.count}.eml"
        tmp = os.path.join(self.folder, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-To: " + ", ".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(data)
        os.rename(tmp, os.path.join(self.folder, "new", name))
        # The same message decoded (headers, the text and HTML parts), for the tests to read.
        parsed = email.message_from_bytes(data, policy=policy.default)
        parts = {}
        types = []
        for part in parsed.walk():
            types.append(part.get_content_type())
            if part.get_content_type() in ("text/plain", "text/html"):
                parts[part.get_content_type()] = part.get_content()
        tls = server.transport.get_extra_info("ssl_object")
        decoded = {
            "tls": tls.version() if tls is not None else None,
            "to": envelope.rcpt_tos,
            "headers": {k.lower(): str(v) for k, v in parsed.items()},
            "content_types": types,
            "text": parts.get("text/plain", ""),
            "html": parts.get("text/html", ""),
        }
        tmp = os.path.join(self.folder, "tmp", name + ".json")
        with open(tmp, "w") as f:
            json.dump(decoded, f)
        os.rename(tmp, os.path.join(self.folder, "json", name + ".json"))
        self.log(f"accepted {message_id}")
        return "250 Message accepted for delivery"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("folder")
    parser.add_argument("--hold")
    parser.add_argument("--hold-seconds", type=float, default=5.0)
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-mode", choices=["starttls", "implicit"], default="starttls")
    args = parser.parse_args()
    sink = Sink(args.folder, args.hold, args.hold_seconds)
    context = None
    if args.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.tls_cert, args.tls_key)
    starttls = context is not None and args.tls_mode == "starttls"
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(
            sink,
            hostname="sink.test",
            decode_data=False,
            tls_context=context if starttls else None,
            require_starttls=starttls,
        ),
        "127.0.0.1",
        args.port,
        ssl=context if context is not None and not starttls else None,
    )
    with open(os.path.join(args.folder, "ready"), "w") as f:
        f.write(str(args.port))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
