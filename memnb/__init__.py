"""memnb: when does a diffusion model start copying its training data, and which points first?"""

from ._version import __version__
from .core.config import ExperimentConfig
from .core.storage import CorruptRunError
from .experiment.monitor import Monitor
from .experiment.results import Results
from .experiment.runner import run_experiment
from .metric.null import chance_level

__all__ = ["ExperimentConfig", "Monitor", "Results", "CorruptRunError", "run_experiment", "chance_level", "__version__"]
