"""PARROT: preference-anchored rationalization (hindsight -> predictive consistency -> foresight distillation).

Stages: ``hindsight`` (a teacher explains each human label), ``consistency`` (keep rationales that
predict the label without seeing it), ``projection`` + ``export`` (pairwise and pointwise SFT data
rendered by the inference templates), ``train`` (TRL SFT). ``pipeline`` runs the data stages
resumably; ``cli`` exposes them as ``rationalrewards parrot ...`` and ``rationalrewards train``.
"""

from .config import ConsistencyConfig, ExportConfig, HindsightConfig, PipelineConfig, TrainConfig, load_config

__all__ = ["ConsistencyConfig", "ExportConfig", "HindsightConfig", "PipelineConfig", "TrainConfig", "load_config"]
