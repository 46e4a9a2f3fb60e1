#!/usr/bin/env python3
"""Send one command to a QEMU QMP unix socket and print its "return" as JSON.

    qmp.py SOCKET COMMAND [ARGUMENTS-JSON]

Exit status: 0 on a "return", 1 on an "error" reply or a closed socket, 2 on usage.
Used by tests/guest/boot-smoke.sh (e.g. "qmp.py qmp.sock system_powerdown").
"""
import json
import socket
import sys


def main() -> int:
    if len(sys.argv) not in (3, 4):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path, command = sys.argv[1], sys.argv[2]
    arguments = json.loads(sys.argv[3]) if len(sys.argv) == 4 else None

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    stream = sock.makefile("rwb")

    def read_reply() -> dict:
        # skip the greeting and asynchronous events until a return or an error
        while True:
            line = stream.readline()
            if not line:
                raise ConnectionError("QMP socket closed")
            msg = json.loads(line)
            if "return" in msg or "error" in msg:
                return msg

    def send(cmd: str, args=None) -> dict:
        msg = {"execute": cmd}
        if args is not None:
            msg["arguments"] = args
        stream.write(json.dumps(msg).encode() + b"\n")
        stream.flush()
        return read_reply()

    greeting = json.loads(stream.readline() or b"{}")
    if "QMP" not in greeting:
        print(f"qmp.py: not a QMP greeting: {greeting}", file=sys.stderr)
        return 1
    for cmd, args in (("qmp_capabilities", None), (command, arguments)):
        reply = send(cmd, args)
        if "error" in reply:
            print(f"qmp.py: {cmd}: {reply['error']}", file=sys.stderr)
            return 1
    print(json.dumps(reply["return"]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError) as e:
        print(f"qmp.py: {e}", file=sys.stderr)
        sys.exit(1)
