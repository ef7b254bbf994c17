"""Plans: map a model onto a system (parallel layout + memory fit).

``plan_deployment`` returns a :class:`Plan` whose ``verdict`` says whether it is feasible and
why not; infeasible is a result, not an exception.
"""

from siliconsim.plans.deploy import Deployment, Plan, Verdict, default_kv_dtype, fit_layout, plan_deployment
from siliconsim.perf.memory import MemoryFit

__all__ = ["Deployment", "MemoryFit", "Plan", "Verdict", "default_kv_dtype", "fit_layout", "plan_deployment"]
