"""siliconsim: which silicon should run this model, how fast, and at what cost.

The library is silent: it returns values and raises typed errors. The CLI renders.
Internally every quantity is a plain float in SI units with the unit in its name.
"""

__version__ = "0.1.0"
