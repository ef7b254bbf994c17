"""Workloads: request sets, arrival processes, trace readers and presets (data in ``data/``)."""

from siliconsim.workloads.presets import Preset, generate, load_preset, load_presets
from siliconsim.workloads.requests import RequestSet, make_requests, take
from siliconsim.workloads.traces import read_trace, rescale

__all__ = ["Preset", "RequestSet", "generate", "load_preset", "load_presets", "make_requests", "read_trace",
           "rescale", "take"]
