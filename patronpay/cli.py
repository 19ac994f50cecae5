"""The `patronpay` command: serve, demo, sandbox (and, as they land, kiosk and staff tools)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from patronpay.bursar_commands import add_bursar_commands
from patronpay.check_command import add_check_command
from patronpay.database_commands import add_database_commands
from patronpay.institution_option import add_institution_options, chosen_institution
from patronpay.kiosk_commands import add_kiosk_commands
from patronpay.staff_commands import add_staff_commands
from proxy.config import ConfigError, is_loopback_host
from proxy.database.errors import SchemaError


def _loopback_only(host: str, allow_remote: bool | None) -> None:
    """The sandbox takes fake payments: loopback only, unless staff ask (`None`: no way to ask,
    as for the demo)."""
    if is_loopback_host(host) or allow_remote:
        return
    hint = " Add --allow-remote for a campus staging server." if allow_remote is False else ""
    raise SystemExit(f"patronpay: refusing to serve the sandbox on {host}: it takes fake "
                     f"payments.{hint}")


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from patronpay.http_limits import server_options
    from proxy.consortium.app import app_to_serve
    from proxy.logs import configure_logging

    settings, app = app_to_serve()  # one institution, or a consortium (docs/consortium.md)
    configure_logging(settings.log_level)
    # Our own middleware reads X-Forwarded-For, and only from trusted proxies: uvicorn must
    # not rewrite the peer address first. Connection limits and the head, body and keep-alive
    # deadlines: docs/deploy.md#timeouts-and-limits.
    uvicorn.run(app, host=args.host, port=args.port, proxy_headers=False, access_log=False,
                log_config=None, server_header=False, **server_options(settings))
    return 0


def cmd_sandbox(args: argparse.Namespace) -> int:
    from patronpay.serving import Listener, bind, serve_together
    from sandbox.app import create_sandbox_app, urls
    from sandbox.smtp import SmtpServer

    _loopback_only(args.host, args.allow_remote)
    app = create_sandbox_app()
    listener = Listener("sandbox", app, bind(args.host, args.port))
    try:
        smtp = SmtpServer(app.state.mailbox, args.host, args.smtp_port).start()
    except OSError as exc:
        raise SystemExit(f"patronpay: the sandbox's SMTP server cannot listen on port "
                         f"{args.smtp_port} ({exc.strerror}): choose another with --smtp-port "
                         "(0: any free port)") from None
    print(f"patronpay sandbox on {listener.url}/")
    for name, url in urls(listener.url).items():
        print(f"  {name:18} {url}")
    print(f"  {'smtp_server':18} {smtp.url} (what it receives: mail_page)")
    print("Stop with Ctrl-C.", flush=True)
    try:
        asyncio.run(serve_together([listener]))
    finally:
        smtp.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from patronpay.demo import run_demo

    _loopback_only(args.host, allow_remote=None)
    if args.consortium:
        from patronpay.consortium_demo import run_consortium_demo

        return run_consortium_demo(args.host, args.port)
    return run_demo(args.host, args.port, kiosk=args.kiosk, bursar=args.bursar)


def cmd_kiosk(args: argparse.Namespace) -> int:
    import uvicorn

    from kiosk.agent import create_kiosk_app, reader_heartbeat_ok
    from kiosk.sdnotify import serve
    from kiosk.settings import KioskConfigError, load_kiosk_settings
    from proxy.logs import configure_logging

    if not is_loopback_host(args.host):
        raise SystemExit(f"patronpay: the kiosk agent serves only loopback, not {args.host}: "
                         "the kiosk's browser is on the same machine.")
    try:
        settings = load_kiosk_settings()
    except KioskConfigError as exc:
        print(f"patronpay: configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    app = create_kiosk_app(settings)
    config = uvicorn.Config(app, host=args.host, port=args.port, proxy_headers=False,
                            access_log=False, log_config=None, server_header=False,
                            lifespan="on", timeout_graceful_shutdown=5)
    asyncio.run(serve(config, on_shutdown=app.state.kiosk.bus.close,
                      healthy=lambda: reader_heartbeat_ok(app)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patronpay",
        description="Pay Alma library fines through CashNet, on the web and at a kiosk.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the proxy, its site and its posting worker")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.set_defaults(handler=cmd_serve)

    demo = commands.add_parser("demo", help="everything on this machine with sandbox services")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000,
                      help="the payment site's port; the sandbox takes the next one")
    demo.add_argument("--kiosk", action="store_true",
                      help="also start a kiosk agent with a simulated card reader")
    demo.add_argument("--bursar", action="store_true",
                      help="also wire up the bursar models (fines file out, payments file in)")
    demo.add_argument("--consortium", action="store_true",
                      help="two institutions, each its own Alma and CashNet, by path prefix")
    demo.set_defaults(handler=cmd_demo)

    kiosk = commands.add_parser("kiosk", help="the kiosk agent (on the kiosk terminal)")
    kiosk.add_argument("--host", default="127.0.0.1")
    kiosk.add_argument("--port", type=int, default=8080)
    kiosk.set_defaults(handler=cmd_kiosk)

    sandbox = commands.add_parser("sandbox", help="the sandbox Alma and CashNet alone")
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--smtp-port", type=int, default=8025,
                         help="port of its mail server (0: any free port)")
    sandbox.add_argument("--allow-remote", action="store_true",
                         help="allow a non-loopback address (campus staging)")
    sandbox.set_defaults(handler=cmd_sandbox)

    add_staff_commands(commands)
    add_check_command(commands)
    add_bursar_commands(commands)
    add_kiosk_commands(commands)
    add_database_commands(commands)
    add_institution_options(commands, skip=("serve", "demo", "kiosk", "sandbox"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with chosen_institution(getattr(args, "institution", None)):
            return args.handler(args)
    except ConfigError as exc:
        print(f"patronpay: configuration error: {exc}", file=sys.stderr)
        return 2
    except SchemaError as exc:  # the ledger needs `patronpay migrate` (or another version)
        print(f"patronpay: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
