"""`manifest.json`: what a batch run made, one entry per item, for the next CI step.

Shards of one manifest may write into one output directory: each run then folds its entries
into the file under a lock (entries of other items are kept), so no shard overwrites
another's. `merge` folds the manifests of several shard directories into one.

A run writes its entries as its items end (`ManifestWriter`): into a private JSON Lines file,
from which `manifest.json` is assembled in line order at the end, one entry at a time, so
that no run holds its entries in memory.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import struct
import tempfile
from array import array
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kling_cli.errors import InvalidRequestError

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
_RECORD = struct.Struct("<qQ")  # ManifestWriter's index: offset + 1, id hash


def write_manifest(
    output_dir: Path, entries: Iterable[Mapping[str, Any]], *, keep_others: bool = False
) -> Path:
    """Write `output_dir/manifest.json` atomically, entries in manifest (line) order. With
    `keep_others` (a shard), entries already there for other item ids are kept."""
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / MANIFEST_NAME
    with _locked(output_dir):
        by_id: dict[str, Mapping[str, Any]] = {}
        if keep_others:
            by_id.update((entry["id"], entry) for entry in _entries(path, missing_ok=True))
        by_id.update((entry["id"], entry) for entry in entries)
        _write(path, by_id.values())
    return path


class ManifestWriter:
    """`manifest.json` for a run whose entries come one at a time, in any order (`add`), and
    whose file is written at the end (`finish`), in line order, byte for byte what
    `write_manifest` would write with every entry at once. Holds nothing per entry: where
    each line's entry is in the spill, and its id's hash, are 16 bytes in a file of their own
    (at the line's place, so that the end reads them in line order)."""

    def __init__(self) -> None:
        # Anonymous: nothing is left behind when the process dies.
        self._spill = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish or close)
        # Per manifest line: offset + 1 of its entry in the spill (0: none), its id's hash.
        self._index = tempfile.TemporaryFile()  # noqa: SIM115 (closed by finish or close)
        self._more: dict[int, list[tuple[int, int]]] = {}  # a line's other entries: rare

    def add(self, entry: Mapping[str, Any]) -> None:
        from kling_cli.manifest import id_hash

        line = int(entry.get("line") or 0)
        self._spill.seek(0, os.SEEK_END)
        offset = self._spill.tell() + 1
        digest = id_hash(str(entry["id"]))
        index = self._index.fileno()
        # Past the end of the file, or in a hole: 0, no entry yet.
        taken = os.pread(index, _RECORD.size, line * _RECORD.size)
        if len(taken) == _RECORD.size and _RECORD.unpack(taken)[0]:
            # A line of several items (an aspect-ratio list).
            self._more.setdefault(line, []).append((offset, digest))
        else:
            os.pwrite(index, _RECORD.pack(offset, digest), line * _RECORD.size)
        self._spill.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")

    def _read(self, offset: int) -> Mapping[str, Any]:
        self._spill.seek(offset - 1)
        entry: Mapping[str, Any] = json.loads(self._spill.readline())
        return entry

    def _records(self) -> Iterator[tuple[int, int, int]]:
        """(line, offset + 1, id hash) of each line that has an entry, in line order."""
        self._index.seek(0)
        line = 0
        while chunk := self._index.read(_RECORD.size * 4096):
            for offset, digest in _RECORD.iter_unpack(chunk):
                if offset:
                    yield line, offset, digest
                line += 1

    def _ours(self) -> Iterator[Mapping[str, Any]]:
        for line, offset, _ in self._records():
            if line not in self._more:
                yield self._read(offset)
                continue
            at = (offset, *(more for more, _ in self._more[line]))
            yield from sorted((self._read(one) for one in at), key=_order)

    def _hashes(self) -> array[int]:
        found = array("Q", (digest for _, _, digest in self._records()))
        found.extend(digest for more in self._more.values() for _, digest in more)
        return found

    def finish(self, output_dir: Path, *, keep_others: bool = False) -> Path:
        """Write `output_dir/manifest.json` atomically (`write_manifest`), then forget."""
        from bisect import bisect_left

        from kling_cli.manifest import id_hash

        output_dir.mkdir(parents=True, exist_ok=True)
        path = output_dir / MANIFEST_NAME
        with _locked(output_dir):
            others: list[Mapping[str, Any]] = []
            if keep_others:
                ours = array("Q", sorted(self._hashes()))

                def is_ours(item_id: str) -> bool:
                    # 64-bit hashes: two different ids meet once in about 10^19 pairs.
                    digest = id_hash(item_id)
                    at = bisect_left(ours, digest)
                    return at < len(ours) and ours[at] == digest

                others = [e for e in _entries(path, missing_ok=True) if not is_ours(str(e["id"]))]
                others.sort(key=_order)
            _write_ordered(path, heapq.merge(others, self._ours(), key=_order))
        self.close()
        return path

    def close(self) -> None:
        self._spill.close()
        self._index.close()


def merge(directories: Iterable[Path], output_dir: Path, *, copy_files: bool = False) -> Path:
    """One `manifest.json` in `output_dir` from the manifests of `directories` (shards). An
    item id found in two of them is refused (`InvalidRequestError`): they are not shards of
    one manifest. With `copy_files`, each entry's images (and sidecars) are copied into
    `output_dir` and its paths point there."""
    by_id: dict[str, dict[str, Any]] = {}
    found_in: dict[str, Path] = {}
    for directory in directories:
        for entry in _entries(directory / MANIFEST_NAME, missing_ok=False):
            item_id = str(entry["id"])
            if item_id in by_id:
                raise InvalidRequestError(
                    f"Item {item_id!r} is in both {found_in[item_id]} and {directory}; merge "
                    "takes the shards of one manifest."
                )
            by_id[item_id], found_in[item_id] = dict(entry), directory
    if copy_files:
        missing = [
            file["path"]
            for entry in by_id.values()
            for file in entry.get("files", [])
            if not Path(file["path"]).is_file()
        ]
        if missing:
            raise InvalidRequestError(
                f"{missing[0]} is in a manifest but not on disk ({len(missing)} missing); "
                "nothing was copied."
            )
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        if copy_files:
            for entry in by_id.values():
                entry["files"] = [_copied(file, output_dir) for file in entry.get("files", [])]
        path = output_dir / MANIFEST_NAME
        with _locked(output_dir):
            _write(path, by_id.values())
    except OSError as exc:
        raise InvalidRequestError(
            f"Cannot write the merged manifest in {output_dir}: {exc.strerror or exc}."
        ) from None
    return path


def _copied(file: Mapping[str, Any], output_dir: Path) -> dict[str, Any]:
    """The image (and its sidecar) copied into `output_dir`, never over another file: a name
    already taken by other bytes gets `-1`, `-2`, ... (as downloads do)."""
    source = Path(file["path"])
    stem, suffix = source.stem, source.suffix
    for attempt in range(10_000):
        target = output_dir / (source.name if attempt == 0 else f"{stem}-{attempt}{suffix}")
        if target.exists() and (target.samefile(source) or _same_bytes(target, source)):
            return {**file, "path": str(target)}
        try:
            with target.open("xb") as out, source.open("rb") as data:
                shutil.copyfileobj(data, out)
        except FileExistsError:
            continue
        sidecar = source.with_name(source.name + ".json")
        if sidecar.exists():
            shutil.copyfile(sidecar, target.with_name(target.name + ".json"))
        return {**file, "path": str(target)}
    raise InvalidRequestError(f"No free file name for {source.name} in {output_dir}.")


def _same_bytes(one: Path, other: Path) -> bool:
    return one.stat().st_size == other.stat().st_size and one.read_bytes() == other.read_bytes()


def _entries(path: Path, *, missing_ok: bool) -> list[Mapping[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return []
        raise InvalidRequestError(f"{path} does not exist; is it a batch output folder?") from None
    except (OSError, ValueError) as exc:
        raise InvalidRequestError(f"{path} is not a readable manifest ({exc}).") from None
    items = document.get("items") if isinstance(document, dict) else None
    if not isinstance(items, list):
        raise InvalidRequestError(f'{path} is not a kling manifest (no "items" list).')
    return [item for item in items if isinstance(item, dict) and "id" in item]


def _order(entry: Mapping[str, Any]) -> tuple[int, str]:
    return (entry.get("line") or 0, str(entry["id"]))


def _write(path: Path, entries: Iterable[Mapping[str, Any]]) -> None:
    _write_ordered(path, sorted(entries, key=_order))


def _write_ordered(path: Path, ordered: Iterable[Mapping[str, Any]]) -> None:
    """The document `json.dumps({"version": ..., "items": ordered}, indent=2)` gives, written
    one entry at a time (an entry's own lines indented under the list)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    with temporary.open("w", encoding="utf-8") as out:
        out.write(f'{{\n  "version": {MANIFEST_VERSION},\n  "items": [')
        separator = "\n    "
        for entry in ordered:
            text = json.dumps(entry, indent=2, ensure_ascii=False)
            out.write(separator + text.replace("\n", "\n    "))
            separator = ",\n    "
        out.write("]\n}\n" if separator == "\n    " else "\n  ]\n}\n")
    temporary.replace(path)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Runs writing the same folder's manifest take turns: an flock on the folder itself,
    which leaves nothing behind in it."""
    if os.name != "posix":
        yield
        return
    import fcntl

    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
