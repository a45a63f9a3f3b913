"""The pictures folder as a tar archive: written for an export, read back safely for an import.

Only stored picture files are taken in either direction — `images/<xx>/<sha256>_<tier>.webp`
and the uploaded originals `images/<xx>/<sha256>.<ext>` — so an archive member can never name
a file outside the pictures folder, and an existing file is never overwritten.
"""
from __future__ import annotations

import os
import re
import shutil
import tarfile
from pathlib import Path

from . import image_files
from .errors import Invalid

PREFIX = "images/"
_MEMBER = re.compile(r"^([0-9a-f]{2})/(\1[0-9a-f]{62})(_(?:high|medium|low)\.webp|"
                     r"\.(?:png|jpg|gif|webp))$")


def write(images_dir: Path, contents: set[str], archive: Path) -> int:
    """Archive the stored files of `contents`; returns how many files went in."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    count = 0
    try:
        with tarfile.open(partial, "w") as tar:
            for content in sorted(contents):
                folder = images_dir / content[:2]
                for path in sorted(folder.glob(f"{content}*")) if folder.is_dir() else ():
                    relative = f"{content[:2]}/{path.name}"
                    if _MEMBER.match(relative) and path.is_file():
                        tar.add(path, arcname=PREFIX + relative, recursive=False)
                        count += 1
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, archive)
    finally:
        partial.unlink(missing_ok=True)
    return count


def _members(tar: tarfile.TarFile) -> tuple[dict[str, tarfile.TarInfo], int]:
    """The usable members by their path under the pictures folder, and how many were ignored."""
    usable, ignored = {}, 0
    for member in tar.getmembers():
        name = member.name[len(PREFIX):] if member.name.startswith(PREFIX) else ""
        if member.isreg() and _MEMBER.match(name):
            usable[name] = member
        elif not member.isdir():
            ignored += 1
    return usable, ignored


def _open(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise Invalid(f"{archive} is not a readable tar archive: {exc}",
                      code="BAD_ARCHIVE") from exc


def complete_contents(archive: Path) -> set[str]:
    """The pictures whose three tiers are all in the archive."""
    with _open(archive) as tar:
        names = set(_members(tar)[0])
    return {match[2] for name in names if (match := _MEMBER.match(name))
            and all(f"{match[1]}/{match[2]}_{tier}.webp" in names for tier in image_files.TIERS)}


def extract(archive: Path, images_dir: Path) -> dict[str, int]:
    """Copy the archive's picture files that are not here yet (each whole, then renamed)."""
    counts = {"extracted": 0, "present": 0, "ignored": 0}
    with _open(archive) as tar:
        members, counts["ignored"] = _members(tar)
        for name, member in members.items():
            target = images_dir / name
            if target.exists():
                counts["present"] += 1
                continue
            source = tar.extractfile(member)
            image_files.write_atomic(target, lambda out: shutil.copyfileobj(source, out))
            counts["extracted"] += 1
    return counts
