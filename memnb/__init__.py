"""memnb: when does a diffusion model start copying its training data, and which points first?"""

__version__ = "0.1.0"

from .config import ExperimentConfig  # noqa: E402
from .metric import chance_level  # noqa: E402
from .results import CorruptRunError, Results  # noqa: E402
from .runner import run_experiment  # noqa: E402

__all__ = ["ExperimentConfig", "Results", "CorruptRunError", "run_experiment", "chance_level", "__version__"]
