"""Training: step time, MFU/HFU, memory fit, layout search and time to train.

``plan_training`` is the entry point. On HBM clusters it picks the framework's overlap and
kernel facts, the chip family's efficiencies, and searches the layouts the pins leave open; on
wafer-scale clusters (CS-2, CS-3) it times weight streaming, data parallel over the systems
(``training/wafer.py``).
"""

from __future__ import annotations

from siliconsim.errors import InputError
from siliconsim.hardware.spec import Chip
from siliconsim.training.job import Layout, TrainingJob
from siliconsim.training.params import Efficiency, Framework, efficiency, framework
from siliconsim.training.search import Pins, SearchResult, search
from siliconsim.training.wafer import plan_wafer_training

__all__ = ["Layout", "Pins", "SearchResult", "TrainingJob", "default_framework", "plan_training"]


def default_framework(chip: Chip) -> str:
    """The framework a user of this chip would train with: MaxText on TPUs, Megatron-Core
    (NeMo) elsewhere."""
    return "maxtext" if chip.vendor == "Google" else "megatron-core"


def plan_training(job: TrainingJob, pins: Pins | None = None, *, framework_ref: str | Framework | None = None,
                  eff: Efficiency | None = None, keep: int = 5, memoryx_bytes: float | None = None) -> SearchResult:
    """Search (or check, when fully pinned) the layouts of ``job`` (``framework_ref``: an id, a
    suite's framework text, or a Framework; default: the chip's usual framework). Wafer-scale
    chips: weight streaming with a MemoryX of ``memoryx_bytes`` (default: the smallest option
    that holds the model)."""
    if job.chip.family == "wafer":
        return plan_wafer_training(job, pins, memoryx_bytes=memoryx_bytes)
    if job.chip.family != "hbm":
        raise InputError(f"training on {job.chip.id} ({job.chip.family} family) is not modelled yet: "
                         f"the training model covers HBM clusters (GPUs, TPUs, Gaudi) and wafer-scale clusters (CS-2, CS-3)")
    if isinstance(framework_ref, Framework):
        fw = framework_ref
    else:
        fw = framework(framework_ref or job.framework or default_framework(job.chip))
    return search(job, pins or Pins(), eff or efficiency(job.chip.id), fw, keep)
