"""``python -m vc_plugin.demo``: start the demo on http://127.0.0.1:5000/ (loopback only)."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import sys

from . import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vc_plugin demo host (development only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--instance", default=None, help="folder for the SQLite file and demo secrets")
    parser.add_argument("--verbose", action="store_true", help="also log every request (hidden by default)")
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print("The demo has a development sign-in and runs on loopback only (127.0.0.1 or ::1).", file=sys.stderr)
        return 2

    app = create_app(args.instance, port=args.port)
    if not args.verbose:
        # The invitation mails the demo prints would drown in request lines, and Werkzeug's own
        # "Running on http://[ip]:…" (addresses are scrubbed from every log line) helps nobody.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    address = f"[{args.host}]" if ":" in args.host else args.host
    print(f"\n  vc_plugin demo: http://{address}:{args.port}/  (sign in at /vc/; another port: --port 5001)")
    print("  Invitation mails appear here. Stop with Ctrl+C.\n", flush=True)
    app.run(host=args.host, port=args.port, debug=True, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
