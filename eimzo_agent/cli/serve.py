"""`eimzo-agent serve`: run the agent in the foreground until SIGINT/SIGTERM (or "Quit" in the tray)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import ssl
import sys
from typing import TYPE_CHECKING

from eimzo_agent import __version__
from eimzo_agent.cli.common import add_key_source_options
from eimzo_agent.config import ENV_ASKPASS, AgentConfig, ConfigError, load_config, machine_problems, tls_path

if TYPE_CHECKING:
    from eimzo_agent.agent import Agent
    from eimzo_agent.dev.demo import DemoKeys

log = logging.getLogger("eimzo_agent")


def add_parser(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run the agent (WebSocket API on 127.0.0.1)")
    serve.add_argument("--ws-port", type=int, metavar="N", help="WebSocket port (default 64646)")
    serve.add_argument("--wss-port", type=int, metavar="N", help="TLS WebSocket port (default 64443)")
    add_key_source_options(serve)
    serve.add_argument(
        "--askpass",
        metavar="PROGRAM",
        help=f"ask for passwords by running PROGRAM (prints the password; non-zero exit = cancel); "
        f"also ${ENV_ASKPASS}",
    )
    serve.add_argument("--no-tray", action="store_true", help="do not show a tray icon")
    serve.add_argument(
        "--demo",
        action="store_true",
        help="demo mode: make demo keys (first run) in <user data dir>/demo/DSKEYS, look for keys there too, "
        "and print the demo portal's address (http://127.0.0.1:<port>/demo/) and the keys' password",
    )
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # websockets logs every connection at INFO; portals open one per call, which would drown our own messages.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, logging.getLogger().level))
    demo = None
    if args.demo:
        from eimzo_agent.dev.demo import ensure_demo_keys
        from eimzo_agent.keys.errors import KeyStoreError

        try:
            demo = ensure_demo_keys()
        except (OSError, ValueError, KeyStoreError) as exc:
            print(f"eimzo-agent: cannot prepare the demo keys: {exc}", file=sys.stderr)
            return 1
    config = load_config(
        args.config,
        {
            "ws_port": args.ws_port,
            "wss_port": args.wss_port,
            "key_roots": [*(args.key_root or []), str(demo.root)] if demo else args.key_root,
            "pkcs11_modules": args.pkcs11_module,
            "askpass": args.askpass,  # $EIMZO_AGENT_ASKPASS is read by load_config, which names it as the source
            "tray": False if args.no_tray else None,
        },
    )
    for problem in machine_problems(config):
        if problem.error:
            raise ConfigError(problem.message)
        log.warning("%s", problem.message)
    return asyncio.run(_serve(config, demo))


async def _serve(config: AgentConfig, demo: DemoKeys | None) -> int:
    from eimzo_agent.agent import build_agent
    from eimzo_agent.server.gc_pause import freeze_startup_objects
    from eimzo_agent.server.listener import AgentServer, PortInUse
    from eimzo_agent.server.memory import IdleTrim, keep_large_blocks_warm

    warm = keep_large_blocks_warm()  # before build_agent starts any thread
    agent = build_agent(config)
    _remove_leftovers(agent)
    server = AgentServer(agent, IdleTrim() if warm else None)
    try:
        await server.start(config.ws_port, wss_port=config.wss_port, tls=_tls_context())
    except PortInUse as exc:
        print(
            f"eimzo-agent: {exc}. Is E-IMZO or another eimzo-agent already running? "
            "Stop it or choose another port with --ws-port.",
            file=sys.stderr,
        )
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # Windows
            signal.signal(signum, lambda *_: loop.call_soon_threadsafe(stop.set))
    print(
        f"eimzo-agent {__version__} ready: ws://127.0.0.1:{server.ports['ws']}/service/cryptapi"
        + (f" wss://127.0.0.1:{server.ports['wss']}/service/cryptapi" if "wss" in server.ports else ""),
        flush=True,
    )
    if demo is not None:
        from eimzo_agent.dev.demo import DEMO_PASSWORD

        made = "made" if demo.created else "found"
        print(f"demo: {len(demo.keys)} demo keys {made} in {demo.root / 'DSKEYS'}, password: {DEMO_PASSWORD} "
              "(list them with: eimzo-agent keys --demo)", flush=True)
        print(f"demo: open http://127.0.0.1:{server.ports['ws']}/demo/ in a browser", flush=True)
    if config.sources:
        log.info("settings from %s", ", ".join(map(str, config.sources)))
    tray = None
    if config.tray:  # never fatal: no display, no tray area or no pystray just means no icon
        from eimzo_agent.ui.tray import start_tray

        tray = start_tray(agent, server.ports["ws"], lambda: loop.call_soon_threadsafe(stop.set))
    log.debug("garbage collection: the %d objects made while starting are left out from now on",
              freeze_startup_objects())
    await stop.wait()
    if tray is not None:
        tray.stop()
    await server.close()
    # Remembered passwords and the keys opened with them go with the agent, not with the process's last breath.
    agent.passwords.forget_all()
    if agent.journal is not None:  # entries are written at once; their fsync runs behind, finish it
        agent.journal.sync()
    return 0


def _remove_leftovers(agent: Agent) -> None:
    """Temporary files a crash left beside key files (a change_password cut short) and in our data folder."""
    from eimzo_agent.config import user_data_path
    from eimzo_agent.fsutil import remove_leftover_temp_files
    from eimzo_agent.keys.pfx_files import key_folders

    try:
        remove_leftover_temp_files([*key_folders(agent.disks()), user_data_path(), tls_path()])
    except OSError as exc:  # a flash drive pulled out meanwhile: not a reason not to start
        log.warning("could not look for leftover temporary files: %s", exc)


def _tls_context() -> ssl.SSLContext | None:
    """The wss identity; without one the agent still serves ws:// (and says why in the log)."""
    from eimzo_agent.server.tls import ensure_identity

    try:
        return ensure_identity(tls_path()).ssl_context()
    except (OSError, ValueError, ssl.SSLError) as exc:
        log.warning("no TLS for wss:// (%s); serving ws:// only", exc)
        return None
