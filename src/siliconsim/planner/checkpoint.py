"""Checkpoints: every finished task's result appended to a JSON-lines file, atomically.

Line 1 is a header naming the problem's fingerprint; each further line is one task's result
(``closed_form.TaskResult.as_dict``), written with a single ``write`` on an ``O_APPEND`` file
descriptor and fsynced before the next task is reported done. After a crash or SIGKILL at most
the line being written is torn: ``load`` keeps every complete line and cuts the torn tail off, so
``--resume`` loses no finished task and evaluates only the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from siliconsim.errors import InputError

FORMAT = "siliconsim-plan-checkpoint/1"


def fingerprint(problem_record: dict[str, Any]) -> str:
    text = json.dumps(problem_record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Checkpoint:
    """An open checkpoint file; ``done`` maps task key -> result dict of the lines already there."""

    def __init__(self, path: str | Path, problem_record: dict[str, Any], *, resume: bool):
        self.path = Path(path)
        self.fingerprint = fingerprint(problem_record)
        self.done: dict[str, dict[str, Any]] = {}
        if resume:
            if not self.path.exists():
                raise InputError(f"--resume {self.path}: no such checkpoint")
            self._load()
        else:
            self._write_bytes(self._line({"format": FORMAT, "fingerprint": self.fingerprint}), truncate=True)

    @staticmethod
    def _line(obj: dict[str, Any]) -> bytes:
        return (json.dumps(obj, separators=(",", ":")) + "\n").encode()

    def _write_bytes(self, data: bytes, truncate: bool = False) -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
        fd = os.open(self.path, flags, 0o644)
        try:
            view = memoryview(data)
            while view:  # one write in practice; loop on a short write
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    def _load(self) -> None:
        raw = self.path.read_bytes()
        good = 0
        for i, line in enumerate(raw.splitlines(keepends=True)):
            if not line.endswith(b"\n"):
                break  # torn tail of a killed write
            try:
                obj = json.loads(line)
            except ValueError:
                break
            if i == 0:
                if obj.get("format") != FORMAT:
                    raise InputError(f"--resume {self.path}: not a siliconsim plan checkpoint")
                if obj.get("fingerprint") != self.fingerprint:
                    raise InputError(f"--resume {self.path}: written for a different problem "
                                     "(run with the same arguments as the interrupted plan)")
            else:
                self.done[obj["key"]] = obj
            good += len(line)
        if good == 0:
            raise InputError(f"--resume {self.path}: not a siliconsim plan checkpoint")
        if good < len(raw):
            os.truncate(self.path, good)

    def append(self, results: list[dict[str, Any]]) -> None:
        """Record finished tasks (one write for the batch; each line is a whole task)."""
        if results:
            self._write_bytes(b"".join(self._line(r) for r in results))
            self.done.update((r["key"], r) for r in results)
