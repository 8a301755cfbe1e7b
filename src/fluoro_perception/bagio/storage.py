"""Bags on disk: which file to open, clearing an output path, recovering a cut-off MCAP."""

from __future__ import annotations

import struct
from pathlib import Path

from fluoro_perception.bagio.formats import STORAGE_SUFFIXES, BagError


def _clear_output(path: Path, *, overwrite: bool, what: str) -> None:
    """Make ``path`` free for a new output, refusing to destroy anything unexpected."""
    import shutil

    if path.is_file():
        raise BagError(f"{what} output {path} is a file; expected a directory path to create")
    contents = list(path.iterdir())
    if not contents:
        path.rmdir()
        return
    if not overwrite:
        raise BagError(
            f"{what} output {path} exists and is not empty; pass --overwrite or choose a new path"
        )
    is_bag = (path / "metadata.yaml").exists() or all(
        p.is_file() and (p.suffix in STORAGE_SUFFIXES or p.name == "metadata.yaml")
        for p in contents
    )
    if not is_bag:
        raise BagError(
            f"{what} output {path} holds files that are not a rosbag2; refusing to delete it, choose a new path"
        )
    shutil.rmtree(path)


def _resolve_bag_path(path: Path) -> tuple[Path, bool]:
    """Return the path rosbags should open and whether metadata.yaml was bypassed."""
    if not path.exists():
        raise BagError(
            f"bag {path} does not exist; expected a rosbag2 directory or a .mcap/.db3 file"
        )
    if path.is_file():
        if path.suffix not in STORAGE_SUFFIXES:
            raise BagError(
                f"bag file {path} has suffix {path.suffix!r}; expected a rosbag2 directory or a "
                f"{'/'.join(STORAGE_SUFFIXES)} file"
            )
        return path, False
    if (path / "metadata.yaml").exists():
        return path, False
    storage_files = sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES)
    if len(storage_files) == 1:
        # metadata.yaml lost (e.g. a recorder killed before closing): MCAP and SQLite3
        # storage files describe their own topics, so the file alone is readable.
        return storage_files[0], True
    raise BagError(
        f"bag directory {path} has no metadata.yaml and {len(storage_files)} storage files; "
        "expected a rosbag2 directory (run `ros2 bag reindex` or pass the .mcap/.db3 file)"
    )


_MCAP_MAGIC = b"\x89MCAP0\r\n"
_MCAP_DATA_END_OPCODE = 0x0F
_MCAP_FOOTER_OPCODE = 0x02


def recover_truncated_mcap(source: Path, target: Path) -> int:
    """Copy the complete records of a cut-off MCAP file into a readable one.

    A recording killed before it closed (power loss, ``kill -9``) ends in the middle of a
    record and lacks the summary and footer, so readers refuse it. This keeps every
    complete top-level record (header, schemas, channels, whole chunks) and appends a
    DataEnd record and a footer without a summary, which readers then scan sequentially;
    what ``mcap recover`` does, written here because the ``mcap`` CLI/package is not a
    dependency and rosbags cannot read a file without its footer.

    Record framing (MCAP spec): opcode ``uint8``, length ``uint64`` little-endian, body.

    Parameters
    ----------
    source : Path
        The damaged ``.mcap`` file.
    target : Path
        Where the recovered ``.mcap`` is written.

    Returns
    -------
    int
        Bytes at the end of ``source`` that were dropped (the incomplete record).

    Raises
    ------
    BagError
        ``source`` does not start with the MCAP magic (not an MCAP file).
    """
    data = source.read_bytes()
    if not data.startswith(_MCAP_MAGIC):
        raise BagError(f"{source} does not start with the MCAP magic; it is not an MCAP file")
    end = len(_MCAP_MAGIC)
    while end + 9 <= len(data):
        opcode = data[end]
        (length,) = struct.unpack_from("<Q", data, end + 1)
        if opcode in (_MCAP_DATA_END_OPCODE, _MCAP_FOOTER_OPCODE) or end + 9 + length > len(data):
            break
        end += 9 + length
    data_end = struct.pack("<BQI", _MCAP_DATA_END_OPCODE, 4, 0)  # crc 0: not checked
    footer = struct.pack("<BQQQI", _MCAP_FOOTER_OPCODE, 20, 0, 0, 0)  # no summary section
    target.write_bytes(data[:end] + data_end + footer + _MCAP_MAGIC)
    return len(data) - end
