"""Command line: `python -m server [serve] [--host --port --data-dir --config --models-dir
--comfyui --demo]` runs the manager until SIGINT or SIGTERM."""
from __future__ import annotations

import argparse
import errno
import logging
import sys

from aiohttp import web

from . import __version__, config as config_module, demo
from .app import create_app

log = logging.getLogger("server")


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="python -m server", description="Hikaze Model Manager")
    main.add_argument("--version", action="version", version=__version__)
    commands = main.add_subparsers(dest="command")
    serve = commands.add_parser("serve", help="run the manager (the default)")
    for target in (main, serve):
        target.add_argument("--host", help="address to listen on (default 127.0.0.1)")
        target.add_argument("--port", type=int, help="port to listen on (default 8189)")
        target.add_argument("--data-dir", help="where the library lives (default $HIKAZE_HOME or ~/.hikaze)")
        target.add_argument("--config", help="config file (default <data dir>/config.yaml)")
        target.add_argument("--models-dir", help="a ComfyUI-style models folder: one sub-folder per kind")
        target.add_argument("--comfyui", help="a ComfyUI folder: its models/ and extra_model_paths.yaml")
        target.add_argument("--demo", action="store_true", help="add a small generated sample library")
    return main


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config, host=args.host,
                                    port=args.port, models_dir=args.models_dir,
                                    comfyui_dir=args.comfyui)
        if args.demo:
            config = demo.prepare(config)
    except config_module.ConfigError as exc:
        log.error("Cannot start: %s", exc)
        return 2
    logging.getLogger().setLevel(config.log_level)
    _announce(config)
    try:
        web.run_app(create_app(config), host=config.host, port=config.port, print=None,
                    access_log=None)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("Cannot start: port %d on %s is in use; pick another with --port",
                      config.port, config.host)
            return 3
        raise
    return 0


def _announce(config: config_module.Config) -> None:
    log.info("Hikaze Model Manager %s: library data in %s", __version__, config.data_dir)
    if config.config_file:
        log.info("Config file: %s", config.config_file)
    if config.kinds:
        for kind in config.kinds.values():
            log.info("Model folders for %s: %s", kind.name, ", ".join(map(str, kind.roots)))
    else:
        log.info("No model folders configured. Add them with --models-dir DIR, --comfyui DIR, or "
                 "'roots:' in %s (see docs/config.md)", config.data_dir / "config.yaml")
    log.info("Serving on http://%s:%d/", config.host, config.port)


if __name__ == "__main__":
    sys.exit(main())
