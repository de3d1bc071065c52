"""``search.py latency serve``: measure the latency requests of searches running on other hosts."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from .cache import LatencyCache, default_cache_path
from .commands import add_cache_args, add_protocol_args, add_span_arg, device_name
from .protocol import check_protocol
from .server import DEFAULT_LEASE_S, serve
from .target import BACKENDS, DEFAULT_THREADS, DEVICES, LatencyTarget, check_target


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``latency serve``."""
    latency = sub.add_parser("latency", help="serve latency measurements to searches on other hosts",
                             description="Latency service of a device host.")
    actions = latency.add_subparsers(dest="latency_command", metavar="ACTION", required=True,
                                     parser_class=type(latency))
    s = actions.add_parser("serve", help="measure queued requests on this host's device",
                           description="Claim latency requests for this backend and device from the queue "
                                       "(an SQLAlchemy URL: the searches' storage), measure each with the "
                                       "protocol and write the result back; a lease renewed by a heartbeat "
                                       "hands a request to another server if this one dies.")
    s.add_argument("--queue", required=True, help="SQLAlchemy URL of the request queue (the search's storage, "
                                                  "or its latency.remote)")
    s.add_argument("--backend", default="onnxruntime", help=f"one of {', '.join(BACKENDS)} (default onnxruntime)")
    s.add_argument("--device", default="CPU", help=f"one of {', '.join(DEVICES)} (default CPU)")
    s.add_argument("--device-id", type=int, default=0, help="device number (default 0)")
    s.add_argument("--threads", type=int, default=None, help=f"CPU threads (default {DEFAULT_THREADS})")
    add_protocol_args(s)
    add_span_arg(s)
    add_cache_args(s)
    s.add_argument("--lease", type=float, default=DEFAULT_LEASE_S, metavar="SECONDS",
                   help=f"how long a claim lasts without a heartbeat (default {DEFAULT_LEASE_S:g})")
    s.add_argument("--idle-exit", type=float, default=None, metavar="SECONDS",
                   help="stop after this long without a request (default: serve until interrupted)")
    s.add_argument("--no-progress", action="store_true", help="no progress bar")
    s.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Serve until interrupted (or idle for ``--idle-exit``)."""
    from space.basics.errors import UsageError

    from .remote import LatencyQueue, describe
    target = LatencyTarget(backend=args.backend, device=device_name(args.device), device_id=args.device_id,
                           threads=args.threads)
    check_target(target)
    check_protocol(args.warmup, args.repeats, args.min_span)
    if not args.lease > 0 or (args.idle_exit is not None and not args.idle_exit > 0):
        raise UsageError(f"--lease {args.lease:g} / --idle-exit {args.idle_exit} - must be positive seconds")
    cache = None if args.no_cache else LatencyCache(args.cache or default_cache_path())
    queue = LatencyQueue(args.queue)
    bar = tqdm(desc="served", unit="request", disable=args.no_progress, file=sys.stderr, dynamic_ncols=True)
    bar.write(f"serving {args.backend}/{target.device} ({target.thread_count} thread(s)) requests from "
              f"{args.queue}", file=sys.stderr)

    def shown(request, line: str) -> None:
        """One line per request, and the bar moves."""
        bar.write(f"{request.id.split('|')[0]} {describe(request.target)}: {line}", file=sys.stderr)
        bar.update()

    try:
        served = serve(queue, target, args.warmup, args.repeats, args.min_span, cache, args.lease, args.idle_exit,
                       on_result=shown)
    finally:
        bar.close()
        queue.close()
    print(f"served {served} request(s)")
    return 0
