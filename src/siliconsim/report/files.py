"""Safe output files for ``-o FILE`` and ``--plot FILE``.

- Only regular files are written. A path that is a directory, FIFO, socket or device is refused
  (``-o /dev/full`` run as root used to replace the device node with a file).
- A symlink is written through: the file it points to is replaced, the link stays.
- The text goes to a temp file in the target's own folder, is flushed and fsync'ed, then renamed
  over the target, so a reader sees the old file or the whole new one, never a partial one.
- A new file gets the permissions the umask gives (0644 under umask 022); a replaced file keeps
  its permission bits.
- SIGTERM or SIGINT (Ctrl-C) during the write removes the temp file; the signal then takes its
  usual course.
- Errors name the path the user gave, not the temp file.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO

from siliconsim.errors import OutputError

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def resolve_target(path: str) -> str:
    """The regular file that writing ``path`` will replace (symlinks followed); raise OutputError
    naming ``path`` when it is not a regular file or its folder does not exist."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    if mode is not None and not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise OutputError(f"{path}: is {kind}; expected a regular file (or a new file's path) to write")
    folder = os.path.dirname(real)
    if not os.path.isdir(folder):
        link = f" (the symlink points to {real})" if os.path.islink(path) else ""
        raise OutputError(f"{path}: folder {folder} does not exist{link}")
    return real


class _Signalled(BaseException):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_raise() -> Iterator[None]:
    """While active, SIGTERM raises _Signalled so ``finally`` blocks run; restored afterwards.
    (SIGINT already raises KeyboardInterrupt.) Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        raise _Signalled(signum)

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    except _Signalled as exc:
        signal.signal(signal.SIGTERM, old)
        os.kill(os.getpid(), exc.signum)  # now with the previous handler: die as SIGTERM would have
        raise SystemExit(128 + exc.signum) from None  # reached only if that handler returns
    finally:
        signal.signal(signal.SIGTERM, old)


def _create_temp(folder: str, base: str, path: str) -> tuple[int, str]:
    for _ in range(100):
        tmp = os.path.join(folder, f".{base}.siliconsim-{secrets.token_hex(4)}.tmp")
        try:
            # 0o666 & ~umask, as open(path, "w") would give a new file
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror}") from None
    raise OutputError(f"{path}: cannot create a temp file in {folder}")


def write_atomic(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a binary file that becomes ``path`` atomically (see the module notes)."""
    real = resolve_target(path)
    folder, base = os.path.split(real)
    keep_mode = stat.S_IMODE(os.stat(real).st_mode) if os.path.exists(real) else None
    with _signals_raise():
        fd, tmp = _create_temp(folder, base, path)
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)
                fh.flush()
                os.fsync(fh.fileno())
            if keep_mode is not None:
                os.chmod(tmp, keep_mode)
            os.replace(tmp, real)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write: {exc.strerror or exc}") from None
        finally:
            if os.path.lexists(tmp):
                os.unlink(tmp)
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable; not every file system lets a folder be fsync'ed."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_file(path: str, text: str) -> None:
    write_atomic(path, lambda fh: fh.write(text.encode("utf-8")))
