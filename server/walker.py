"""The stat walk of the model folders (file system only): every model file once, with its size,
mtime and inode, following symbolic links safely."""
from __future__ import annotations

import logging
import os
import stat
from collections import deque
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Mapping, NamedTuple

from .config import Kind
from .jobs import Job

log = logging.getLogger(__name__)

# Downloaders write to (or beside) these names until the file is complete.
PARTIAL_SUFFIXES = (".part", ".tmp", ".crdownload", ".aria2", ".incomplete")


class Found(NamedTuple):
    """A model file on disk, reached by `path`; `linked` = through a symbolic link."""

    path: str
    kind: str
    size: int
    mtime_ns: int
    inode: int
    linked: bool


@dataclass
class Walk:
    """What a walk found."""

    files: dict[str, Found] = field(default_factory=dict)  # path → file, one per real file
    aliases: set[str] = field(default_factory=set)  # other paths of those files (links)
    partial: set[str] = field(default_factory=set)  # paths with a .part/.aria2/... sibling
    roots: list[str] = field(default_factory=list)  # folders walked
    missing_roots: list[str] = field(default_factory=list)
    digest: int = 0  # equal for two walks that found the same


def walk(kinds: Mapping[str, Kind], job: Job) -> Walk:
    """Find every model file under the kinds' roots (extension filter per kind, kinds in
    sorted order: a folder under two kinds gives its files to the first)."""
    return _Walker(job).run(kinds)


class _Walker:
    """Walk real folders first, then those reached through folder links, so a file reached
    both ways keeps its direct path; a folder is entered once per kind, so link loops end.
    Files are told apart by (device, inode): a hard or symbolic link to a file is that file."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.result = Walk()
        self.by_inode: dict[tuple[int, int], Found] = {}
        self.visited: set[tuple[str, int, int]] = set()
        self.links: deque[tuple[str, Kind]] = deque()

    def run(self, kinds: Mapping[str, Kind]) -> Walk:
        for name in sorted(kinds):
            for root in map(str, kinds[name].roots):
                if os.path.isdir(root):
                    self.result.roots.append(root)
                    self.tree(root, kinds[name], linked=False)
                else:
                    log.warning("Model folder %s is not there (unmounted drive?); its files are "
                                "marked missing until it returns", root)
                    self.result.missing_roots.append(root)
        while self.links:
            self.tree(*self.links.popleft(), linked=True)
        walked = self.result
        walked.files = {found.path: found for found in self.by_inode.values()}
        walked.digest = hash((frozenset(walked.files.values()), frozenset(walked.aliases),
                              frozenset(walked.partial), tuple(walked.missing_roots)))
        return walked

    def tree(self, top: str, kind: Kind, linked: bool) -> None:
        wanted = tuple(kind.extensions - set(PARTIAL_SUFFIXES))
        try:
            info = os.stat(top)
        except OSError as exc:
            log.warning("Cannot read the folder %s (%s); skipped", top, exc)
            return
        # A folder is known by (device, inode); a sub-folder's inode comes with the listing.
        folders = [(top, info.st_dev, info.st_ino)]
        while folders:
            folder, device, inode = folders.pop()
            count = 0
            for entry in self.listing(folder, (kind.name, device, inode)):
                name = entry.name
                if name[0] == ".":
                    continue  # hidden: .git, .cache, .Trash-1000, macOS ._ files
                if entry.is_file(follow_symlinks=False):
                    if name.endswith(wanted) or name.lower().endswith(wanted):
                        try:
                            count += self.take(entry.path, entry.stat(), kind.name, linked)
                        except OSError:
                            pass  # gone since the listing
                    elif name.lower().endswith(PARTIAL_SUFFIXES):
                        self.result.partial.add(entry.path.rsplit(".", 1)[0])
                elif entry.is_dir(follow_symlinks=False):
                    folders.append((entry.path, device, entry.inode()))
                elif entry.is_symlink():
                    count += self.link(entry, kind, wanted)
            self.job.advance(files=count, current=folder)

    def listing(self, folder: str, key: tuple[str, int, int]) -> list[os.DirEntry]:
        """The folder's entries by name; none if it was already walked for this kind."""
        self.job.check_cancelled()
        if key in self.visited:
            return []
        self.visited.add(key)
        try:
            with os.scandir(folder) as listing:
                return sorted(listing, key=attrgetter("name"))
        except OSError as exc:
            log.warning("Cannot read the folder %s (%s); skipped", folder, exc)
            return []

    def link(self, entry: os.DirEntry, kind: Kind, wanted: tuple[str, ...]) -> int:
        """A linked folder is walked after the real ones; a linked file is taken like any
        other, but loses to a direct path of the same file."""
        try:
            info = entry.stat()
        except OSError:
            return 0  # a broken link
        if stat.S_ISDIR(info.st_mode):
            self.links.append((entry.path, kind))
        elif stat.S_ISREG(info.st_mode) and entry.name.lower().endswith(wanted):
            return self.take(entry.path, info, kind.name, True)  # not a pipe or a device
        return 0

    def take(self, path: str, info: os.stat_result, kind: str, linked: bool) -> int:
        """Keep a model file; the same file reached again is an alias of it."""
        key = (info.st_dev, info.st_ino)
        first = self.by_inode.get(key)
        if first is None or (first.linked and not linked):
            self.by_inode[key] = Found(path, kind, info.st_size, info.st_mtime_ns, info.st_ino,
                                       linked)
            if first is not None:
                self.result.aliases.add(first.path)
        else:
            self.result.aliases.add(path)
        return 1
