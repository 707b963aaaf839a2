"""``metalearn serve``: the adaptive tutor (chapter 06's meta-learned student model) over HTTP."""
from __future__ import annotations

import sys

__all__ = ["register", "run_serve"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve the adaptive tutor over HTTP (next item, predicted mastery, health)",
        description="Start the adaptive tutor service: POST /next-item, POST /mastery, GET /health, GET /items "
        "(API description at /openapi.json). Needs the 'serve' extra: pip install -c constraints.txt -e '.[serve]'.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000; 0 picks a free port)")
    parser.add_argument("--model", default=None,
                        help="tutor model file written by TutorModel.save (default: the shipped SweSAT model)")
    parser.add_argument("--port-file", default=None,
                        help="write the bound port to this file once listening (for scripts using --port 0)")
    parser.add_argument("--max-body-bytes", type=int, default=None,
                        help="reject larger request bodies with 413 (default 65536)")
    parser.add_argument("--log-level", default="warning", choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=run_serve)


def run_serve(args) -> int:
    if not 0 <= args.port <= 65535:
        print(f"error: --port must be 0..65535, got {args.port}", file=sys.stderr)
        return 2
    try:
        from ..education.service import DEFAULT_MAX_BODY_BYTES, serve
    except ImportError as exc:
        print(f"error: {exc}; metalearn serve needs the 'serve' extra: pip install -c constraints.txt -e '.[serve]'",
              file=sys.stderr)
        return 2
    from ..education.tutor import TutorModel, load_default_tutor

    # Requests do tiny numpy work on the event loop: one thread per process is the right setting
    # (a BLAS/torch pool would only contend with the server for the cores).
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover - torch is a core dependency
        pass
    try:
        tutor = load_default_tutor() if args.model is None else TutorModel.load(args.model)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    limit = DEFAULT_MAX_BODY_BYTES if args.max_body_bytes is None else args.max_body_bytes

    def ready(host: str, port: int) -> None:
        if args.port_file:
            from ..atomic import atomic_write_text

            atomic_write_text(args.port_file, f"{port}\n")
        shown = f"[{host}]" if ":" in host else host
        print(f"metalearn serve: {tutor.num_items} items, groups {list(tutor.group_names)}; "
              f"listening on http://{shown}:{port} (Ctrl-C stops)", flush=True)

    try:
        serve(tutor, args.host, args.port, max_body_bytes=limit, log_level=args.log_level, on_ready=ready)
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    return 0
