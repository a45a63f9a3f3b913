"""image_files: sniffing, safe decoding and the atomic, content-addressed WebP tiers."""
from __future__ import annotations

import hashlib
import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image

from server import image_files
from server.errors import ApiError, TooLarge, UnsupportedMedia, Unprocessable

from tests.factories import png_bytes

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def all_files(folder: Path) -> list[Path]:
    """Every file under `folder`, hidden ones included."""
    return sorted(Path(root) / name for root, _, names in os.walk(folder) for name in names)


def temp_files(folder: Path) -> list[Path]:
    return [p for p in all_files(folder) if p.suffix == ".tmp"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def crafted_png(width: int, height: int, before_idat: bytes = b"") -> bytes:
    """An RGB PNG written by hand: a header that may claim any size, tiny real pixel data."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    rows = min(height, 4) * (b"\0" + b"\xff\x00\x00" * min(width, 4))
    return (PNG_SIGNATURE + header + before_idat + png_chunk(b"IDAT", zlib.compress(rows))
            + png_chunk(b"IEND", b""))


def noise_png(size=(96, 64)) -> bytes:
    """A PNG whose pixel data is large enough that cutting the file cuts into it."""
    buffer = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def ingest_bytes(data: bytes, images_dir: Path) -> image_files.StoredImage:
    return image_files.ingest(io.BytesIO(data), images_dir)


def open_tier(images_dir: Path, content: str, tier: str) -> Image.Image:
    path = image_files.tier_path(images_dir, content, tier)
    with Image.open(path) as picture:
        assert picture.format == "WEBP"
        picture.load()
        return picture.copy()


@pytest.fixture
def images_dir(tmp_path):
    folder = tmp_path / "images"
    yield folder
    assert temp_files(folder) == [], "an ingest left a temp file behind"


# --- formats -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, extension", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp"),
                                            ("GIF", ".gif")])
def test_ingest_stores_three_tiers_and_the_original(images_dir, fmt, extension):
    data = png_bytes(size=(64, 48), fmt=fmt)
    stored = ingest_bytes(data, images_dir)

    assert stored == image_files.StoredImage(hashlib.sha256(data).hexdigest(), 64, 48, fmt)
    folder = images_dir / stored.image_sha256[:2]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{stored.image_sha256}{extension}"]
        + [f"{stored.image_sha256}_{tier}.webp" for tier in ("high", "medium", "low")])
    assert (folder / f"{stored.image_sha256}{extension}").read_bytes() == data
    assert image_files.is_complete(images_dir, stored.image_sha256)
    # A small picture keeps its size in the high tier; the others are 0.66× and 0.33×.
    sizes = {tier: open_tier(images_dir, stored.image_sha256, tier).size
             for tier in image_files.TIERS}
    assert sizes == {"high": (64, 48), "medium": (42, 32), "low": (21, 16)}


def test_animated_gif_keeps_its_first_frame(images_dir):
    frames = [Image.new("RGB", (40, 30), colour)
              for colour in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(io.BytesIO(buffer.getvalue())) as check:
        assert check.n_frames == 3

    stored = ingest_bytes(buffer.getvalue(), images_dir)

    assert (stored.format, stored.width, stored.height) == ("GIF", 40, 30)
    high = open_tier(images_dir, stored.image_sha256, "high").convert("RGB")
    red, green, blue = high.getpixel((20, 15))
    assert red > 200 and green < 50 and blue < 50


def test_rgba_keeps_its_alpha(images_dir):
    picture = Image.new("RGBA", (64, 48), (0, 128, 255, 255))
    picture.paste((0, 0, 0, 0), (0, 0, 32, 48))  # left half fully transparent
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")

    stored = ingest_bytes(buffer.getvalue(), images_dir)

    for tier in image_files.TIERS:
        stored_tier = open_tier(images_dir, stored.image_sha256, tier)
        assert stored_tier.mode == "RGBA"
        width, height = stored_tier.size
        assert stored_tier.getpixel((1, height // 2))[3] < 10
        assert stored_tier.getpixel((width - 2, height // 2))[3] > 245


def test_opaque_picture_is_stored_without_alpha(images_dir):
    stored = ingest_bytes(png_bytes(), images_dir)
    assert open_tier(images_dir, stored.image_sha256, "high").mode == "RGB"


def test_jpeg_exif_orientation_is_applied(images_dir):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 10)).save(buffer, "JPEG", exif=exif)

    stored = ingest_bytes(buffer.getvalue(), images_dir)

    assert (stored.width, stored.height) == (48, 64)
    assert open_tier(images_dir, stored.image_sha256, "high").size == (48, 64)


def test_large_picture_is_scaled_to_two_megapixels(images_dir):
    stored = ingest_bytes(png_bytes(size=(3000, 2000)), images_dir)

    assert (stored.width, stored.height) == (3000, 2000)  # the record keeps the source size
    sizes = {tier: open_tier(images_dir, stored.image_sha256, tier).size
             for tier in image_files.TIERS}
    high_w, high_h = sizes["high"]
    assert (high_w, high_h) == (1732, 1154)
    assert high_w * high_h <= image_files.HIGH_MAX_PIXELS
    for tier, factor in (("medium", 0.66), ("low", 0.33)):
        width, height = sizes[tier]
        assert abs(width - high_w * factor) <= 1 and abs(height - high_h * factor) <= 1


@pytest.mark.parametrize("size", [(20000, 50), (40, 17000)])
def test_panorama_fits_webp_side_limit(images_dir, size):
    # Under 2 MP but longer than libwebp's 16383-pixel side: scaled to fit, not refused.
    stored = ingest_bytes(png_bytes(size=size), images_dir)

    assert (stored.width, stored.height) == size
    high = open_tier(images_dir, stored.image_sha256, "high").size
    assert max(high) == image_files.WEBP_MAX_SIDE
    assert abs(high[0] / high[1] - size[0] / size[1]) / (size[0] / size[1]) < 0.05
    assert image_files.is_complete(images_dir, stored.image_sha256)


def test_failed_writer_leaves_neither_temp_nor_target(images_dir):
    target = images_dir / "ab" / "target.webp"

    def half_then_fail(out):
        out.write(b"half a file")
        raise ValueError("encoder gave up")

    with pytest.raises(ValueError):
        image_files.write_atomic(target, half_then_fail)

    assert all_files(images_dir) == []


# --- content addressing ----------------------------------------------------------------------

def test_same_bytes_are_stored_once(images_dir):
    data = png_bytes()
    first = ingest_bytes(data, images_dir)
    files = all_files(images_dir)
    mtimes = [p.stat().st_mtime_ns for p in files]

    second = ingest_bytes(data, images_dir)

    assert second == first
    assert all_files(images_dir) == files
    assert [p.stat().st_mtime_ns for p in files] == mtimes  # not rewritten


def test_different_bytes_of_the_same_picture_are_separate_contents(images_dir):
    png = ingest_bytes(png_bytes(fmt="PNG"), images_dir)
    webp = ingest_bytes(png_bytes(fmt="WEBP"), images_dir)
    assert png.image_sha256 != webp.image_sha256
    assert len(all_files(images_dir)) == 8


def test_incomplete_tiers_are_written_again(images_dir):
    data = png_bytes()
    stored = ingest_bytes(data, images_dir)
    image_files.tier_path(images_dir, stored.image_sha256, "low").unlink()
    assert not image_files.is_complete(images_dir, stored.image_sha256)

    ingest_bytes(data, images_dir)

    assert image_files.is_complete(images_dir, stored.image_sha256)


def test_failed_write_leaves_no_temp_file(images_dir):
    data = png_bytes()
    content = hashlib.sha256(data).hexdigest()
    blocker = image_files.tier_path(images_dir, content, "medium")
    blocker.mkdir(parents=True)  # a folder where the file should go: the rename fails

    with pytest.raises(OSError):
        ingest_bytes(data, images_dir)

    assert temp_files(images_dir) == []
    assert not image_files.is_complete(images_dir, content)


# --- refused uploads -------------------------------------------------------------------------

@pytest.mark.parametrize("head", [
    b"",
    b"hello, this is plain text\n",
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
    b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'></svg>",
    b"%PDF-1.7\n",
    b"RIFF\x00\x00\x00\x00WAVEfmt ",
    PNG_SIGNATURE[:7],
])
def test_sniff_refuses_what_is_not_an_image(head):
    with pytest.raises(UnsupportedMedia) as caught:
        image_files.sniff(head)
    assert caught.value.status == 415


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF"])
def test_sniff_names_the_format_from_content(fmt):
    assert image_files.sniff(png_bytes(fmt=fmt)[:16]) == fmt


@pytest.mark.parametrize("data", [
    b"",
    b"just some text that is long enough to be read",
    b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
])
def test_ingest_refuses_non_images_and_writes_nothing(images_dir, data):
    with pytest.raises(UnsupportedMedia):
        ingest_bytes(data, images_dir)
    assert all_files(images_dir) == []


def test_png_named_jpeg_content_is_decoded_by_its_content(images_dir):
    # The sniffed format decides the decoder; a PNG signature with JPEG data is refused.
    data = PNG_SIGNATURE + png_bytes(fmt="JPEG")[8:]
    with pytest.raises(Unprocessable):
        ingest_bytes(data, images_dir)
    assert all_files(images_dir) == []


def test_truncated_png_is_unprocessable(images_dir):
    data = noise_png()
    with pytest.raises(Unprocessable) as caught:
        ingest_bytes(data[: len(data) * 6 // 10], images_dir)
    assert caught.value.status == 422
    assert all_files(images_dir) == []


@pytest.mark.parametrize("width, height", [(20000, 20000), (9000, 8000), (1, 200_000_000)])
def test_decompression_bomb_is_refused_before_decoding(images_dir, width, height):
    with pytest.raises((TooLarge, Unprocessable)) as caught:
        ingest_bytes(crafted_png(width, height), images_dir)
    assert caught.value.status in (413, 422)
    assert all_files(images_dir) == []


def test_picture_over_the_pixel_limit_is_too_large(images_dir):
    # 72 MP: over our 64 MP limit, under Pillow's own bomb threshold.
    with pytest.raises(TooLarge) as caught:
        ingest_bytes(crafted_png(9000, 8000), images_dir)
    assert caught.value.code == "TOO_MANY_PIXELS"


def test_crafted_png_helper_makes_a_valid_image(images_dir):
    stored = ingest_bytes(crafted_png(4, 4), images_dir)
    assert (stored.width, stored.height) == (4, 4)


def _ztxt(size: int) -> bytes:
    return png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * size, 9))


def _itxt(size: int) -> bytes:
    return png_chunk(b"iTXt", b"parameters\0\x01\x00\0\0" + zlib.compress(b"A" * size, 9))


@pytest.mark.parametrize("text_chunk", [_ztxt(8 * 1024 * 1024), _itxt(8 * 1024 * 1024)],
                         ids=["zTXt", "iTXt"])
def test_png_with_a_text_bomb_is_refused(images_dir, text_chunk):
    data = crafted_png(4, 4, before_idat=text_chunk)
    assert len(data) < 64 * 1024  # small on the wire, megabytes once inflated

    with pytest.raises(ApiError) as caught:
        ingest_bytes(data, images_dir)

    assert 400 <= caught.value.status < 500
    assert all_files(images_dir) == []


def test_png_with_a_small_text_chunk_is_fine(images_dir):
    stored = ingest_bytes(crafted_png(4, 4, before_idat=_ztxt(1000)), images_dir)
    assert image_files.is_complete(images_dir, stored.image_sha256)


# --- removal ---------------------------------------------------------------------------------

def test_remove_deletes_every_file_of_the_contents_only(images_dir):
    kept = ingest_bytes(png_bytes(colour=(1, 2, 3)), images_dir)
    gone = ingest_bytes(png_bytes(colour=(4, 5, 6), fmt="JPEG"), images_dir)

    image_files.remove(images_dir, [gone.image_sha256])

    assert not any(gone.image_sha256 in p.name for p in all_files(images_dir))
    assert image_files.is_complete(images_dir, kept.image_sha256)
    assert len(all_files(images_dir)) == 4


def test_remove_of_unknown_content_is_harmless(images_dir):
    kept = ingest_bytes(png_bytes(), images_dir)
    image_files.remove(images_dir, ["ab" * 32, "cd" * 32])
    assert image_files.is_complete(images_dir, kept.image_sha256)
