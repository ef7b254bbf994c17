"""Discrete-event simulation of an LLM serving deployment.

Requests arrive (Poisson, gamma or a trace), are routed to replicas, batched continuously with
chunked prefill under a token budget and a KV-cache capacity (admission control, preemption by
recompute), optionally split into prefill and decode pools; step times come from a StepModel
(the same ``dep.step`` cost model ``estimate`` uses). Metrics follow vLLM's benchmark_serving.
"""

from siliconsim.serving.config import ServeConfig
from siliconsim.serving.engine import simulate
from siliconsim.serving.metrics import summarize
from siliconsim.serving.result import SimResult
from siliconsim.serving.step_model import DeploymentStepModel, LinearStepModel, StepModel

__all__ = ["DeploymentStepModel", "LinearStepModel", "ServeConfig", "SimResult", "StepModel", "simulate", "summarize"]
