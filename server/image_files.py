"""Image content on disk: sniff and decode an upload safely, write its WebP tiers atomically.

Runs in worker threads (Pillow work never touches the event loop). Files are named by the
sha256 of the uploaded bytes, so the same picture is stored once however often it is used.
"""
from __future__ import annotations

import errno
import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import StorageFull, TooLarge, Unprocessable, UnsupportedMedia

TIERS = {"high": (1.0, 80), "medium": (0.66, 60), "low": (0.33, 45)}
HIGH_MAX_PIXELS = 2_000_000
WEBP_MAX_SIDE = 16383  # libwebp refuses anything wider or taller (a panorama can be, under 2 MP)
MAX_SOURCE_PIXELS = 64_000_000  # refused before decoding: the decompression-bomb guard
# Text carried in the file (a PNG's tEXt chunks). Compressed text past 1 MB a chunk is Pillow's
# own bomb guard; plain text cannot inflate, but megabytes of it would be kept with the original.
# A ComfyUI workflow is a few hundred kB at most.
MAX_TEXT_CHARS = 8 * 1024 * 1024
SIGNATURES = {  # format name → (extension, test on the first bytes)
    "PNG": (".png", lambda b: b.startswith(b"\x89PNG\r\n\x1a\n")),
    "JPEG": (".jpg", lambda b: b.startswith(b"\xff\xd8\xff")),
    "GIF": (".gif", lambda b: b[:6] in (b"GIF87a", b"GIF89a")),
    "WEBP": (".webp", lambda b: b[:4] == b"RIFF" and b[8:12] == b"WEBP"),
}


@dataclass(frozen=True)
class StoredImage:
    image_sha256: str
    width: int
    height: int
    format: str


def tier_path(images_dir: Path, image_sha256: str, tier: str) -> Path:
    return images_dir / image_sha256[:2] / f"{image_sha256}_{tier}.webp"


def is_complete(images_dir: Path, image_sha256: str) -> bool:
    return all(tier_path(images_dir, image_sha256, tier).exists() for tier in TIERS)


def sniff(head: bytes) -> str:
    """The image format named by the content's first bytes, or UnsupportedMedia."""
    for name, (_, test) in SIGNATURES.items():
        if test(head):
            return name
    raise UnsupportedMedia("The upload is not a JPEG, PNG, WebP or GIF image", code="NOT_AN_IMAGE")


def ingest(source: BinaryIO, images_dir: Path) -> StoredImage:
    """Check, decode and store one uploaded image: three WebP tiers plus the original bytes."""
    source.seek(0)
    fmt = sniff(source.read(16))
    digest = hashlib.sha256()
    source.seek(0)
    for chunk in iter(lambda: source.read(1 << 20), b""):
        digest.update(chunk)
    image_sha256 = digest.hexdigest()
    source.seek(0)
    picture = _decode(source, fmt)
    if not is_complete(images_dir, image_sha256):
        _write_tiers(picture, images_dir, image_sha256)
        source.seek(0)
        write_atomic(images_dir / image_sha256[:2] / f"{image_sha256}{SIGNATURES[fmt][0]}",
                      lambda out: out.write(source.read()))
    return StoredImage(image_sha256, picture.width, picture.height, fmt)


def _decode(source: BinaryIO, fmt: str) -> Image.Image:
    # No `with`: closing would free the pixels. The caller owns `source`, so nothing leaks.
    try:
        picture = Image.open(source, formats=[fmt])
        width, height = picture.size
        if width * height > MAX_SOURCE_PIXELS:
            raise TooLarge(f"The image is {width}×{height} pixels; the limit is "
                           f"{MAX_SOURCE_PIXELS // 1_000_000} megapixels", code="TOO_MANY_PIXELS")
        picture.load()
        text = sum(len(value) for value in picture.info.values() if isinstance(value, str))
        if text > MAX_TEXT_CHARS:
            raise Unprocessable(f"The image carries {text} characters of text; the limit is "
                                f"{MAX_TEXT_CHARS // (1024 * 1024)} MB", code="TOO_MUCH_TEXT")
        ImageOps.exif_transpose(picture, in_place=True)  # no copy of a large picture
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice its warning size
        raise TooLarge(f"The image is too many pixels to decode: {exc}",
                       code="TOO_MANY_PIXELS") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise Unprocessable(f"The image cannot be decoded: {exc}", code="BAD_IMAGE") from exc
    has_alpha = picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info
    mode = "RGBA" if has_alpha else "RGB"
    return picture if picture.mode == mode else picture.convert(mode)


def _write_tiers(picture: Image.Image, images_dir: Path, image_sha256: str) -> None:
    pixels = picture.width * picture.height
    base = min(1.0, (HIGH_MAX_PIXELS / pixels) ** 0.5, WEBP_MAX_SIDE / max(picture.size))
    # The high tier rounds down, so it never exceeds HIGH_MAX_PIXELS; the others follow it.
    high = (max(1, int(picture.width * base)), max(1, int(picture.height * base)))
    for tier, (factor, quality) in TIERS.items():
        size = (max(1, round(high[0] * factor)), max(1, round(high[1] * factor)))
        scaled = picture if size == picture.size else picture.resize(size, Image.Resampling.LANCZOS)
        write_atomic(tier_path(images_dir, image_sha256, tier),
                      lambda out: scaled.save(out, "WEBP", quality=quality, method=4))


def write_atomic(target: Path, write) -> None:
    """Write through a temp file in the same folder and rename: never a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{uuid.uuid4().hex}.tmp")
    try:
        with open(temp, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull("The data folder's disk is full; nothing was stored",
                              code="DISK_FULL") from exc
        raise
    finally:  # whatever failed (Pillow raises ValueError too), leave no temp file behind
        temp.unlink(missing_ok=True)


def remove(images_dir: Path, contents: list[str]) -> None:
    """Delete the stored files of image contents no model uses any more."""
    for image_sha256 in contents:
        folder = images_dir / image_sha256[:2]
        for path in folder.glob(f"{image_sha256}*"):
            path.unlink(missing_ok=True)
