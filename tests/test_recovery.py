"""recovery: at start, what an interrupted write left goes; everything a record names stays."""
from __future__ import annotations

import io

from server import image_files, images, library, pending, recovery
from tests.factories import png_bytes


def stored(images_dir, colour) -> image_files.StoredImage:
    return image_files.ingest(io.BytesIO(png_bytes(colour=colour)), images_dir)


def test_leftovers_of_an_interrupted_write_go_and_recorded_files_stay(db, tmp_path):
    images_dir, pending_dir = tmp_path / "images", tmp_path / "pending"
    sha = "ab" * 32
    library.add_model(db, library.NewModel(sha256=sha, name="m", type="loras", size_bytes=1,
                                           created_at=1))
    kept = stored(images_dir, (1, 2, 3))
    images.add_image(db, sha, kept, images.ImageFields(), 1)
    orphan = stored(images_dir, (9, 9, 9))  # stored, then the process died before the record
    temp = images_dir / kept.image_sha256[:2] / ".0123abcd.tmp"
    temp.write_bytes(b"half a picture")
    pending_dir.mkdir()
    (pending_dir / "named.png").write_bytes(png_bytes())
    (pending_dir / "unnamed.png").write_bytes(png_bytes())
    (pending_dir / ".77.tmp").write_bytes(b"half")
    pending.add_pending(db, pending.NewPending(path=str(tmp_path / "x.safetensors"), created_at=1,
                                              image="named.png"))
    other = images_dir / "notes.txt"  # not ours to judge: left alone
    other.write_text("a user's file")

    assert recovery.clean_up(db, images_dir, pending_dir) == 4 + 2 + 1
    assert image_files.is_complete(images_dir, kept.image_sha256) and other.exists()
    assert not list(images_dir.glob(f"??/{orphan.image_sha256}*")) and not temp.exists()
    assert sorted(p.name for p in pending_dir.iterdir()) == ["named.png"]
    assert recovery.clean_up(db, images_dir, pending_dir) == 0


def test_nothing_to_do_without_the_folders(db, tmp_path):
    assert recovery.clean_up(db, tmp_path / "no-images", tmp_path / "no-pending") == 0
