"""Local references as they really come: pipes and devices, phone photos stored sideways,
print-shop CMYK, 16-bit scans, palette and grey-with-alpha PNGs, gigapixel files, and sizes at
the 10 MB line. Checks and --fit work on the image as displayed."""

from __future__ import annotations

import base64
import io
import os
import threading
from pathlib import Path

import pytest
from PIL import Image

from kling_cli.emulator import Emulator
from kling_cli.limits import MAX_REFERENCE_BYTES, MAX_REFERENCE_PIXELS
from kling_cli.references import inspect_local_reference

ORIENTATION = 0x0112


def sent_image(emu: Emulator) -> Image.Image:
    [task] = next(r for r in emu.requests if r.server == "api").json()
    [uri] = task["inputs"]["referenceImages"]
    image = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    image.load()
    return image


def sideways_jpeg(path: Path, stored: tuple[int, int], orientation: int = 6) -> Path:
    """A phone photo: pixels stored turned a quarter, an EXIF tag saying how to show them."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    image = Image.new("RGB", stored, (30, 120, 200))
    image.paste((250, 250, 0), (0, 0, stored[0] // 4, stored[1]))  # a band on the stored left
    image.save(path, "JPEG", exif=exif.tobytes())
    return path


def padded_png(path: Path, total_bytes: int) -> Path:
    """A valid PNG of exactly `total_bytes` (bytes after IEND are ignored by decoders)."""
    Image.new("RGB", (400, 400), (1, 2, 3)).save(path, "PNG")
    with path.open("ab") as handle:
        handle.write(b"\0" * (total_bytes - path.stat().st_size))
    return path


@pytest.fixture(scope="module")
def huge_jpeg(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Just over Pillow's decompression-bomb limit (Pillow warns; no error)."""
    path = tmp_path_factory.mktemp("huge") / "huge.jpg"
    Image.new("L", (9500, 9500), 128).save(path, "JPEG", quality=50)
    return path


def refusal_cases(tmp_path: Path, huge_jpeg: Path) -> list[tuple[str, str]]:
    bomb = tmp_path / "bomb.png"
    Image.new("1", (13500, 13500)).save(bomb, "PNG")  # over twice the limit: Pillow refuses
    return [
        ("/dev/zero", "is not a regular file"),
        (str(huge_jpeg), f"at most {MAX_REFERENCE_PIXELS:,} pixels, Pillow's decompression-bomb"),
        (str(bomb), "(--fit downscales it)."),
        (
            str(padded_png(tmp_path / "mib.png", 10 * 1024 * 1024 + 1)),
            "is 10,485,761 bytes; the limit is 10 MB (10,000,000 bytes)",
        ),
        (
            str(padded_png(tmp_path / "mb.png", MAX_REFERENCE_BYTES + 1)),
            "is 10,000,001 bytes; the limit is 10 MB",
        ),
        (
            # Displayed 600x250: the short side is the stored width.
            str(sideways_jpeg(tmp_path / "sideways.jpg", (250, 600))),
            "is 600x250 px; each side must be at least 300 px",
        ),
    ]


def test_every_odd_file_is_one_sentence_exit_2_and_no_request(
    run_cli,
    use_emulator: Emulator,
    tmp_path: Path,
    huge_jpeg: Path,
    recwarn: pytest.WarningsRecorder,
) -> None:
    for path, message in refusal_cases(tmp_path, huge_jpeg):
        result = run_cli("generate", "restyle @image_1", "-r", path, "-p", "runware")
        assert result.exit_code == 2, (path, result.stderr)
        assert message in result.stderr and path in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert use_emulator.requests == []
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def test_exactly_10_mb_is_accepted(tmp_path: Path) -> None:
    path = padded_png(tmp_path / "edge.png", MAX_REFERENCE_BYTES)
    assert inspect_local_reference(str(path)).size == 10_000_000


def test_a_fifo_is_refused_and_never_read(run_cli, use_emulator: Emulator, tmp_path: Path) -> None:
    fifo = tmp_path / "ref.png"
    os.mkfifo(fifo)
    outcome: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: outcome.update(
            result=run_cli("generate", "restyle @image_1", "-r", str(fifo), "-p", "runware")
        ),
        daemon=True,
    )
    worker.start()
    worker.join(15)
    if worker.is_alive():
        fd = os.open(fifo, os.O_WRONLY)  # let the stuck reader see end of file
        os.close(fd)
        worker.join(15)
        pytest.fail("kling blocked reading a FIFO")
    result = outcome["result"]
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "is not a regular file" in result.stderr  # type: ignore[attr-defined]
    assert use_emulator.requests == []


def test_fit_sends_a_sideways_phone_photo_upright(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    photo = sideways_jpeg(tmp_path / "phone.jpg", (800, 600))  # displayed 600x800, portrait
    result = run_cli("generate", "restyle @image_1", "-r", str(photo), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert "turned upright (EXIF orientation 6)" in result.stderr
    image = sent_image(use_emulator).convert("RGB")
    assert image.size == (600, 800)
    # Orientation 6 turns the picture clockwise: the stored left band is now on top.
    assert image.getpixel((300, 10))[2] < 100 and image.getpixel((300, 790))[2] > 150


def grey16(path: Path, size: tuple[int, int]) -> Path:
    Image.new("I;16", size, 40000).save(path, "PNG")
    return path


def palette(path: Path, size: tuple[int, int]) -> Path:
    Image.new("RGB", size, (200, 80, 40)).convert("P").save(path, "PNG")
    return path


@pytest.mark.parametrize(
    ("name", "make", "size", "sent_mode", "step"),
    [
        (
            "cmyk.jpg",
            lambda p, s: Image.new("CMYK", s, (0, 200, 200, 0)).save(p, "JPEG"),
            (200, 200),
            "RGB",
            "converted CMYK to RGB",
        ),
        (
            "cmyk-big.jpg",
            lambda p, s: Image.new("CMYK", s, (0, 200, 200, 0)).save(p, "JPEG"),
            (500, 500),
            "RGB",
            "converted CMYK to RGB",
        ),
        (
            "la.png",
            lambda p, s: Image.new("LA", s, (90, 128)).save(p, "PNG"),
            (400, 400),
            "RGBA",
            "converted LA to RGBA",
        ),
        ("p.png", lambda p, s: palette(p, s), (400, 400), "RGB", "converted P to RGB"),
        ("grey16.png", lambda p, s: grey16(p, s), (250, 400), "RGB", "converted I;16 to RGB"),
    ],
)
def test_fit_converts_every_mode_to_one_a_provider_takes(
    run_cli,
    use_emulator: Emulator,
    tmp_path: Path,
    name: str,
    make,
    size,
    sent_mode: str,
    step: str,
) -> None:
    path = tmp_path / name
    make(path, size)
    result = run_cli("generate", "restyle @image_1", "-r", str(path), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert step in result.stderr
    image = sent_image(use_emulator)
    assert image.mode == sent_mode and min(image.size) >= 300
    if name == "grey16.png":  # scaled to 8 bits, not clipped to white
        assert image.getpixel((0, 0)) == (156, 156, 156)


def test_fit_downscales_a_file_over_the_pixel_limit(
    run_cli, use_emulator: Emulator, huge_jpeg: Path, recwarn: pytest.WarningsRecorder
) -> None:
    result = run_cli("generate", "restyle @image_1", "-r", str(huge_jpeg), "-p", "runware", "--fit")
    assert result.exit_code == 0, result.stderr
    assert "downscaled 9500x9500 to" in result.stderr
    image = sent_image(use_emulator)
    assert image.width == image.height and image.width * image.height <= MAX_REFERENCE_PIXELS
    assert not [w for w in recwarn if "DecompressionBomb" in type(w.message).__name__]


def fixable_cases(tmp_path: Path, huge_jpeg: Path) -> list[tuple[str, str, str]]:
    """(file, what is allowed, what --fit would do): one per limit --fit brings a file within."""
    webp = tmp_path / "hero.webp"
    Image.new("RGB", (600, 600), (9, 9, 9)).save(webp, "WEBP")
    small = tmp_path / "small.png"
    Image.new("RGB", (299, 600), (9, 9, 9)).save(small, "PNG")
    return [
        (str(webp), "takes JPEG or PNG", "(--fit converts it to PNG)."),
        (str(huge_jpeg), f"at most {MAX_REFERENCE_PIXELS:,} pixels", "(--fit downscales it)."),
        (
            str(padded_png(tmp_path / "big.png", MAX_REFERENCE_BYTES + 1)),
            "the limit is 10 MB",
            "(--fit re-encodes it, or downscales it, under the limit).",
        ),
        (str(small), "at least 300 px", "(--fit upscales it, keeping its aspect ratio)."),
    ]


def test_generate_suggests_fit_where_it_would_fix_the_file(
    run_cli, use_emulator: Emulator, tmp_path: Path, huge_jpeg: Path
) -> None:
    for path, allowed, remedy in fixable_cases(tmp_path, huge_jpeg):
        result = run_cli("generate", "restyle @image_1", "-r", path, "-p", "runware")
        assert result.exit_code == 2, (path, result.stderr)
        [line] = result.stderr.strip().splitlines()
        assert path in line and allowed in line and line.endswith(remedy), line
    assert use_emulator.requests == []


def test_a_batch_manifest_has_no_fit_so_its_messages_do_not_suggest_it(
    run_cli, use_emulator: Emulator, tmp_path: Path, huge_jpeg: Path
) -> None:
    import json

    for path, allowed, _ in fixable_cases(tmp_path, huge_jpeg):
        manifest = tmp_path / "items.jsonl"
        manifest.write_text(json.dumps({"id": "a", "prompt": "x @image_1", "refs": [path]}) + "\n")
        result = run_cli("batch", str(manifest), "-p", "runware", "-o", str(tmp_path / "out"))
        assert result.exit_code == 2, (path, result.stderr)
        assert allowed in result.stderr and "--fit" not in result.stderr, result.stderr
    assert use_emulator.requests == []


def test_what_fit_cannot_fix_does_not_suggest_it(
    run_cli, use_emulator: Emulator, tmp_path: Path
) -> None:
    pano = tmp_path / "pano.png"
    Image.new("RGB", (300, 900), (9, 9, 9)).save(pano, "PNG")
    result = run_cli("generate", "restyle @image_1", "-r", str(pano), "-p", "runware")
    assert result.exit_code == 2 and "aspect ratio must be between" in result.stderr
    assert "--fit" not in result.stderr
    refused = run_cli("generate", "restyle @image_1", "-r", str(pano), "-p", "runware", "--fit")
    assert refused.exit_code == 2, refused.stderr
    assert refused.stderr.rstrip().endswith("2.5:1, and --fit never crops.")
