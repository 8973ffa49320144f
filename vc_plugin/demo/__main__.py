"""``python -m vc_plugin.demo``: start the demo on http://127.0.0.1:5000/ (loopback only)."""

from __future__ import annotations

import argparse
import ipaddress
import sys

from . import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vc_plugin demo host (development only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--instance", default=None, help="folder for the SQLite file and demo secrets")
    args = parser.parse_args(argv)
    try:
        loopback = ipaddress.ip_address(args.host).is_loopback
    except ValueError:
        loopback = args.host == "localhost"
    if not loopback:
        print("The demo has a development sign-in and runs on loopback only (127.0.0.1 or ::1).", file=sys.stderr)
        return 2

    app = create_app(args.instance, port=args.port)
    print(f"\n  vc_plugin demo: http://{args.host}:{args.port}/  (sign in at /vc/)\n", flush=True)
    app.run(host=args.host, port=args.port, debug=True, use_reloader=False, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
