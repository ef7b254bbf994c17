"""Memory fit per chip: weights + KV cache + activations against usable capacity."""

from __future__ import annotations

from dataclasses import dataclass


def _gb(n_bytes: float) -> str:
    return f"{n_bytes / 1e9:.1f} GB" if n_bytes >= 1e8 else f"{n_bytes / 1e6:.1f} MB"


@dataclass(frozen=True)
class MemoryFit:
    """Bytes per chip of one replica."""

    weights_bytes: float
    kv_bytes: float
    activation_bytes: float
    usable_bytes: float
    capacity_bytes: float

    @property
    def used_bytes(self) -> float:
        return self.weights_bytes + self.kv_bytes + self.activation_bytes

    @property
    def fits(self) -> bool:
        return self.used_bytes <= self.usable_bytes

    @property
    def free_for_kv_bytes(self) -> float:
        return max(0.0, self.usable_bytes - self.weights_bytes - self.activation_bytes)

    def reason(self, where: str) -> str:
        """Why it does not fit, naming the part that overflows first."""
        if self.fits:
            return ""
        if self.weights_bytes > self.usable_bytes:
            return f"weights need {_gb(self.weights_bytes)} per chip > {_gb(self.usable_bytes)} usable ({where})"
        return (f"KV cache needs {_gb(self.kv_bytes)} per chip > {_gb(self.free_for_kv_bytes)} left after weights "
                f"{_gb(self.weights_bytes)} and activations {_gb(self.activation_bytes)} ({where})")

    def as_dict(self) -> dict[str, float]:
        return {"weights_bytes": self.weights_bytes, "kv_cache_bytes": self.kv_bytes,
                "activation_bytes": self.activation_bytes, "usable_bytes": self.usable_bytes,
                "capacity_bytes": self.capacity_bytes}
