"""Command line: `python -m server [serve] [--host --port --data-dir --config --models-dir
--comfyui --demo]` runs the manager until SIGINT or SIGTERM; `python -m server migrate-legacy
--db FILE [--images-dir DIR] [--dry-run]` brings a Hikaze v1 database into the library;
`python -m server api-key show|regenerate` prints or replaces the public API's key;
`python -m server export [--out FILE] [--images ARCHIVE]` writes the user data as JSON (and the
pictures as a tar archive); `python -m server import FILE [--images ARCHIVE] [--dry-run]` merges
such an export into the library; `python -m server restore-backup FILE` puts a backup of the
database back (docs/data-safety.md)."""
from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from aiohttp import web

from . import __version__, backups, config as config_module, demo, legacy, user_data
from .api_key import ApiKey, KeyFileError
from .app import create_app
from .errors import ApiError

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
        _add_host_flags(target)
    migrate = commands.add_parser("migrate-legacy", help="bring a Hikaze v1 database into the library")
    migrate.add_argument("--db", required=True, help="the v1 database file (opened read-only)")
    migrate.add_argument("--images-dir", help="the v1 preview images (default: images/ beside it)")
    migrate.add_argument("--data-dir", help="where the library lives (default $HIKAZE_HOME or ~/.hikaze)")
    migrate.add_argument("--config", help="config file (default <data dir>/config.yaml)")
    migrate.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    key = commands.add_parser("api-key", help="print or replace the key of the public API (/api/v1)")
    key.add_argument("action", choices=("show", "regenerate"))
    key.add_argument("--data-dir", help="where the library lives (default $HIKAZE_HOME or ~/.hikaze)")
    key.add_argument("--config", help="config file (default <data dir>/config.yaml)")
    _add_data_commands(commands)
    return main


def _add_data_commands(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write the user data (not the model files) as JSON")
    export.add_argument("--out", help="the JSON file to write (default: standard output)")
    export.add_argument("--images", metavar="ARCHIVE", help="also write the pictures as a tar archive")
    restore = commands.add_parser("import", help="merge an export into the library")
    restore.add_argument("file", help="a JSON file written by `export`")
    restore.add_argument("--images", metavar="ARCHIVE", help="the pictures archive written with it")
    restore.add_argument("--dry-run", action="store_true", help="report what would happen; change nothing")
    back = commands.add_parser("restore-backup", help="put a backup of the database back "
                               "(the manager must be stopped)")
    back.add_argument("file", help="a backup, e.g. <data dir>/backups/library-...db")
    for target in (export, restore, back):
        target.add_argument("--data-dir", help="where the library lives (default $HIKAZE_HOME or ~/.hikaze)")
        target.add_argument("--config", help="config file (default <data dir>/config.yaml)")


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "migrate-legacy":
        return migrate_legacy(args)
    if args.command == "api-key":
        return api_key(args)
    if args.command in DATA_COMMANDS:
        return DATA_COMMANDS[args.command](args)
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config, host=args.host,
                                    port=args.port, models_dir=args.models_dir,
                                    comfyui_dir=args.comfyui, snapshot=args.snapshot)
        if args.demo:
            config = demo.prepare(config)
    except config_module.ConfigError as exc:
        log.error("Cannot start: %s", exc)
        return 2
    logging.getLogger().setLevel(config.log_level)
    try:
        sock = bind(config.host, config.port, args.port_tries)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            log.error("Cannot start: port %d on %s is in use; pick another with --port",
                      config.port, config.host)
            return 3
        raise
    config = dataclasses.replace(config, port=sock.getsockname()[1])
    _announce(config)
    if args.parent_pid:
        exit_with_parent(args.parent_pid)
    if args.port_file:
        report_port(Path(args.port_file), config.port)
    try:
        app = create_app(config)
    except KeyFileError as exc:
        log.error("Cannot start: %s", exc)
        return 2
    web.run_app(app, sock=sock, print=None, access_log=None)
    return 0


def _add_host_flags(target: argparse.ArgumentParser) -> None:
    """Flags ComfyUI's side passes when it runs the manager (nodes/sidecar.py)."""
    target.add_argument("--snapshot", help="ComfyUI's host snapshot (folders, address, user dir)")
    target.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    target.add_argument("--port-file", help="write {\"port\", \"pid\"} here once the port is bound")
    target.add_argument("--port-tries", type=int, default=1,
                        help="try this many ports from --port up when one is taken (default 1)")


def bind(host: str, port: int, tries: int) -> socket.socket:
    """Bind the listening socket here, trying the next port while one is taken, so the port
    reported is one we hold (no probe-then-bind race)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in range(port, port + max(1, tries)):
        sock = socket.socket(family, socket.SOCK_STREAM)
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, candidate))
        except OSError as exc:
            sock.close()
            if exc.errno != errno.EADDRINUSE or candidate == port + max(1, tries) - 1:
                raise
            log.info("Port %d is taken; trying %d", candidate, candidate + 1)
            continue
        sock.listen(128)
        return sock
    raise AssertionError("unreachable")


def report_port(path: Path, port: int) -> None:
    """Tell the process that started us which port we hold (written whole, then renamed)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps({"port": port, "pid": os.getpid()}), encoding="utf-8")
    os.replace(partial, path)


def exit_with_parent(parent_pid: int, interval: float = 0.5) -> None:
    """Stop (as on SIGTERM) once the parent is gone, so a crashed ComfyUI leaves no orphan."""
    direct = os.getppid() == parent_pid  # then a changed getppid() means it died (reparented)

    def watch() -> None:
        while _alive(parent_pid) and (not direct or os.getppid() == parent_pid):
            time.sleep(interval)
        log.info("ComfyUI (pid %d) is gone; stopping", parent_pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="hikaze-parent-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    if os.name == "nt":  # signal 0 would terminate the process there; rely on getppid()
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def migrate_legacy(args: argparse.Namespace) -> int:
    """Print the migration report as JSON; exit 0 when every model made it, 1 when some
    failed, 2 when the paths or the config cannot be used."""
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config)
        report = legacy.run_standalone(config, _absolute(args.db), _absolute(args.images_dir),
                                       args.dry_run)
    except (config_module.ConfigError, ApiError) as exc:
        log.error("Cannot migrate: %s", exc)
        return 2
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0 if report["errors"] == 0 else 1


def api_key(args: argparse.Namespace) -> int:
    """Print the key (made now if there is none yet) or a new one; a running manager picks a
    new key up at its next /api/v1 request."""
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config)
        key = ApiKey.in_data_dir(config.data_dir)
        value = key.regenerate() if args.action == "regenerate" else key.current()
    except (config_module.ConfigError, KeyFileError) as exc:
        if args.action == "show" or not isinstance(exc, KeyFileError):
            log.error("Cannot read the API key: %s", exc)
            return 2
        value = ApiKey(config.data_dir / "api-key.json").regenerate()  # replace a broken file
    sys.stdout.write(value + "\n")
    return 0


def export(args: argparse.Namespace) -> int:
    """Exit 0 when written, 2 when the library cannot be opened or a file cannot be written."""
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config)
        document, report = user_data.export_library(config, _path(args.images))
    except (config_module.ConfigError, ApiError, OSError) as exc:
        log.error("Cannot export: %s", exc)
        return 2
    text = json.dumps(document, indent=1, ensure_ascii=False) + "\n"
    if args.out:
        user_data.write_text_atomic(_path(args.out), text)
        log.info("Exported %s", json.dumps(report))
    else:
        sys.stdout.write(text)
    return 0


def import_(args: argparse.Namespace) -> int:
    """Print the import report as JSON; exit 2 (nothing written) when the document, the archive
    or the library cannot be used."""
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config)
        report = user_data.import_library(config, _path(args.file), _path(args.images),
                                          args.dry_run)
    except (config_module.ConfigError, ApiError, OSError) as exc:
        log.error("Cannot import: %s", exc)
        return 2
    sys.stdout.write(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


def restore_backup(args: argparse.Namespace) -> int:
    """Exit 0 when restored, 2 when the file is no usable backup, 3 while a manager runs."""
    try:
        config = config_module.load(data_dir=args.data_dir, config_file=args.config)
        report = backups.restore(_path(args.file), config.data_dir)
    except backups.ManagerRunning as exc:
        log.error("Cannot restore: %s", exc)
        return 3
    except (config_module.ConfigError, backups.RestoreRefused, OSError) as exc:
        log.error("Cannot restore: %s", exc)
        return 2
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


DATA_COMMANDS = {"export": export, "import": import_, "restore-backup": restore_backup}


def _path(path: str | None) -> Path | None:
    return Path(_absolute(path)) if path else None


def _absolute(path: str | None) -> str | None:
    """A path typed on the command line, relative to where the command runs."""
    return str(Path(path).expanduser().absolute()) if path else None


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
