"""A real SMTP server for the integration tests (aiosmtpd, Debian's python3-aiosmtpd).

Usage: smtp_sink.py DIR. Listens on a free loopback port, prints that port on one line, and
stores every message it accepts as DIR/<n>.eml (written to a temporary name first, so a reader
never sees half a message). Recipients whose local part starts with "bounce" are refused for
good (550 at RCPT), as a mail server refuses an unknown mailbox. Exits when its standard input
closes, so it never outlives the test that started it.
"""

import asyncio
import itertools
import os
import sys
import threading

from aiosmtpd.smtp import SMTP


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.rsplit("@", 1)[0].lower().startswith("bounce"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        tmp = os.path.join(self.directory, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.rename(tmp, os.path.join(self.directory, f"{n:06}.eml"))
        return "250 OK"


def exit_when_stdin_closes():
    sys.stdin.read()
    os._exit(0)


async def main(directory):
    os.makedirs(directory, exist_ok=True)
    store = Store(directory)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(store, hostname="localhost"), "127.0.0.1", 0
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
