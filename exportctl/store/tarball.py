"""Canonical tar archives for directory artifacts, and extraction that refuses hostile archives.

A directory export becomes one layer, and that layer's digest is part of the bundle's identity, so the
tar bytes must depend only on the files' names, contents and exec bit: never on mtimes, owners, umask or
the order the filesystem lists entries in. Uncompressed on purpose: a compressor's output can change
between versions, which would change digests of unchanged exports.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import tarfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from exportctl.errors import StoreError, VerifyFailed

_DIR_MODE = 0o755
_FILE_MODE = 0o644
_EXEC_MODE = 0o755


def _scan(src_dir: Path) -> list[tuple[str, os.stat_result, Path]]:
    """Every entry under `src_dir` as (posix relative path, lstat, path), sorted by relative path."""
    found: list[tuple[str, os.stat_result, Path]] = []

    def walk(directory: Path) -> None:
        with os.scandir(directory) as entries:
            for entry in entries:
                path = Path(entry.path)
                rel = path.relative_to(src_dir).as_posix()
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    # A link's target is outside the digest: the same tar could mean different files.
                    raise StoreError(
                        f"cannot archive '{rel}' in {src_dir}: it is a symlink",
                        hint="have the exporter write real files instead of links",
                    )
                if not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
                    raise StoreError(f"cannot archive '{rel}' in {src_dir}: not a regular file or directory")
                found.append((rel, st, path))
                if stat.S_ISDIR(st.st_mode):
                    walk(path)

    if not src_dir.is_dir() or src_dir.is_symlink():
        raise StoreError(f"cannot archive {src_dir}: not a directory")
    walk(src_dir)
    # Python compares str by code point, which is the same order as comparing the UTF-8 bytes.
    found.sort(key=lambda item: item[0])
    return found


def write_canonical_tar(src_dir: Path, out: BinaryIO) -> None:
    """Stream the canonical tar of `src_dir` into `out`, so large exports never sit in memory."""
    # "w|" (stream mode) only needs out.write(), so `out` may be a pipe or a hashing writer.
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for rel, st, path in _scan(src_dir):
            info = tarfile.TarInfo(rel)
            # Set explicitly rather than trusting TarInfo's defaults: these are the determinism contract.
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if stat.S_ISDIR(st.st_mode):
                info.type, info.mode = tarfile.DIRTYPE, _DIR_MODE
                tar.addfile(info)
                continue
            info.size = st.st_size
            info.mode = _EXEC_MODE if st.st_mode & 0o111 else _FILE_MODE
            with open(path, "rb") as f:
                tar.addfile(info, f)


def canonical_tar(src_dir: Path) -> bytes:
    """The canonical tar of `src_dir` as bytes; for small trees and tests (use write_canonical_tar otherwise)."""
    buf = io.BytesIO()
    write_canonical_tar(src_dir, buf)
    return buf.getvalue()


def _check_member(member: tarfile.TarInfo) -> tuple[str, ...]:
    """The member's path components, or VerifyFailed if extracting it could write outside `dest`."""
    name = member.name
    if name.startswith("/") or PurePosixPath(name).is_absolute():
        raise VerifyFailed(f"tar entry '{name}' has an absolute path; refusing to extract")
    parts = tuple(p for p in PurePosixPath(name).parts if p != ".")
    if ".." in parts:
        raise VerifyFailed(f"tar entry '{name}' contains '..'; refusing to extract")
    if member.issym() or member.islnk():
        raise VerifyFailed(f"tar entry '{name}' is a link to '{member.linkname}'; refusing to extract")
    if not (member.isreg() or member.isdir()):
        raise VerifyFailed(f"tar entry '{name}' is a device, fifo or other special file; refusing to extract")
    return parts


def safe_extract(source: bytes | Path, dest: Path) -> None:
    """Extract a tar into `dest`, accepting only plain files and directories that stay inside it.

    Every entry is checked before anything is written, so a hostile archive leaves `dest` untouched.
    """
    fileobj = io.BytesIO(source) if isinstance(source, bytes) else None
    with tarfile.open(name=None if fileobj else source, fileobj=fileobj, mode="r:") as tar:
        members = [(member, _check_member(member)) for member in tar.getmembers()]
        dest.mkdir(parents=True, exist_ok=True)
        for member, parts in members:
            if not parts:
                continue  # the archive root itself ("." or "./")
            target = dest.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                os.chmod(target, _DIR_MODE)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            src = tar.extractfile(member)
            assert src is not None  # extractfile only returns None for non-regular members
            with src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
            os.chmod(target, _EXEC_MODE if member.mode & 0o111 else _FILE_MODE)


def check_members(source: Path) -> int:
    """Check every entry of a tar without extracting anything (see `_check_member`); returns how many."""
    try:
        with tarfile.open(source, mode="r:") as tar:
            return len([_check_member(member) for member in tar.getmembers()])
    except (tarfile.TarError, EOFError) as e:
        raise VerifyFailed(f"{source.name} is not a readable tar ({e})") from None
