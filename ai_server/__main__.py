"""Command line: `python -m ai_server serve` and `python -m ai_server make-tiny-models DIR`."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import ConfigError, add_arguments, cli_values, load_settings, settings_markdown


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hsi-ai-server", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the AI server (every model, one port)")
    add_arguments(serve)
    tiny = commands.add_parser(
        "make-tiny-models", help="write random-weight models of the real architectures"
    )
    tiny.add_argument("directory", type=Path)
    tiny.add_argument("--only", action="append", help="build just this model (repeatable)")
    commands.add_parser("settings-table", help="print the settings as the README's Markdown table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "make-tiny-models":
        return _make_tiny_models(args.directory, args.only)
    if args.command == "settings-table":
        print(settings_markdown(), end="")
        return 0
    try:
        settings = load_settings(cli=cli_values(args))
    except ConfigError as err:
        print(f"hsi-ai-server: configuration error: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from .runtime.allocator import tune_malloc

    tune_malloc()  # before torch and the executors start their threads
    return _serve(settings)


def _serve(settings: object) -> int:
    from aiohttp import web

    from .addon import AddonEnvironment, provision_api_key, register_discovery
    from .app import build_ssl_context, create_app
    from .config import Settings

    assert isinstance(settings, Settings)
    # Running as the HA add-on (Supervisor sets SUPERVISOR_TOKEN): never without an API key.
    addon = AddonEnvironment.from_environ(os.environ)
    try:
        if addon is not None:
            settings = provision_api_key(settings, addon.data_dir)
        app = create_app(settings)
        ssl_context = build_ssl_context(settings)
    except ConfigError as err:
        print(f"hsi-ai-server: configuration error: {err}", file=sys.stderr)
        return 2
    if addon is not None:
        register_discovery(app, addon.token, base_url=addon.supervisor_url)
    logging.getLogger(__name__).info(
        "serving on %s://%s:%d (profile %s, device %s, api key %s)",
        "https" if ssl_context else "http",
        settings.host,
        settings.port,
        settings.profile,
        settings.device,
        "required" if settings.api_key else "not set",
    )
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        ssl_context=ssl_context,
        print=None,
        access_log_format='%a "%r" %s %b %Tfs',
    )
    return 0


def _make_tiny_models(directory: Path, only: list[str] | None) -> int:
    from .models import tiny

    unknown = sorted(set(only or []) - set(tiny.BUILDERS))
    if unknown:
        print(f"unknown model(s): {', '.join(unknown)}; known: {', '.join(tiny.BUILDERS)}")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, path in tiny.make_tiny_models(directory, only).items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
