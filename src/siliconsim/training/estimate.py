"""One training estimate: a job on a layout, feasible or with its reason.

MFU = model FLOPs per second over the chips' dense peak (PaLM, Chowdhery et al. 2022 §4 and
appendix B); HFU counts recomputed FLOPs too (Korthikanti et al. 2022 §5). Both use the bf16
dense peak, as NeMo and Megatron report FP8 runs (``mfu_dtype_peak`` uses the matmul dtype's
peak instead). Time to train is the token budget over steady-state tokens/s; interruptions and
checkpoints at scale are not included (Llama 3 reports ~90% effective training time at 16k
GPUs, Dubey et al. 2024 §3.3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

from siliconsim.training.job import Layout, TrainingJob, check_layout
from siliconsim.training.memory import TrainingMemory, training_memory
from siliconsim.training.params import Efficiency, Framework
from siliconsim.training.step import StepBreakdown, constants, hardware_flop_per_token, step_breakdown
from siliconsim.perf.ops import model_flop_per_token


@dataclass(frozen=True)
class TrainEstimate:
    job: TrainingJob
    layout: Layout
    framework: str
    memory: TrainingMemory
    breakdown: StepBreakdown | None  # None when infeasible
    reason: str = ""

    @property
    def feasible(self) -> bool:
        return self.breakdown is not None

    @property
    def step_time_s(self) -> float:
        return self.breakdown.step_time_s if self.breakdown else float("inf")

    @property
    def tokens_per_s(self) -> float:
        return self.job.tokens_per_step / self.step_time_s

    @property
    def model_flop_per_token(self) -> float:
        return model_flop_per_token(self.job.model, self.job.seq_len)

    def _utilisation(self, flop_per_token: float, dtype: str) -> float:
        peak = self.job.chip.peak_flop_per_s(dtype) * self.job.chips
        return flop_per_token * self.tokens_per_s / peak

    @property
    def mfu(self) -> float:
        return self._utilisation(self.model_flop_per_token, "bf16")

    @property
    def mfu_dtype_peak(self) -> float:
        return self._utilisation(self.model_flop_per_token, self.job.dtype)

    @property
    def hfu(self) -> float:
        return self._utilisation(hardware_flop_per_token(self.job, self.layout, self.model_flop_per_token), "bf16")

    @property
    def time_to_train_s(self) -> float | None:
        return self.job.tokens / self.tokens_per_s if self.job.tokens else None


def estimate_training(job: TrainingJob, lay: Layout, eff: Efficiency, fw: Framework,
                      cache: dict | None = None) -> TrainEstimate:
    """Check the layout (raising on impossible pins), fit memory, then time the step (``cache``:
    see ``step_breakdown``)."""
    check_layout(job, lay)
    usable = job.chip.capacity_bytes * constants()["usable_memory_fraction"]
    mem = training_memory(job, lay, usable, fw.flash_attention)
    if not mem.fits:
        return TrainEstimate(job, lay, fw.id, mem, None, mem.reason())
    return TrainEstimate(job, lay, fw.id, mem, step_breakdown(job, lay, eff, fw, cache))
