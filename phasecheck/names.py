"""Names that cross layers, defined once: the keys of a training run's metrics.jsonl rows and the artifacts a
verdict lists beside itself. Training writes them, checks and reports read them; none spells the string."""
from __future__ import annotations

__all__ = ["Metric", "Artifact", "CURVES"]


class Metric:
    """Keys of one metrics.jsonl row (builtin GRPO and SFT, and the TRL backend's renamed logs)."""

    STEP = "step"
    TOTAL_STEPS = "total_steps"
    LOSS = "loss"
    EVAL_LOSS = "eval_loss"
    REWARD_MEAN = "reward_mean"
    REWARD_STD = "reward_std"
    FRAC_ZERO_STD = "frac_zero_std"
    FRAC_ZERO_STD_CI = "frac_zero_std_ci"
    KL = "kl"
    ENTROPY = "entropy"
    CLIP_FRAC = "clip_frac"
    COMPLETION_LENGTH = "completion_length"
    TRUNCATED_FRAC = "truncated_frac"
    ACCURACY = "accuracy"
    GRAD_NORM = "grad_norm"
    LR = "lr"


class Artifact:
    """Names in Verdict.artifacts; each maps to a file beside verdict.json."""

    SAMPLES = "samples"                       # samples.jsonl: every graded sample
    DEMONSTRATIONS = "demonstrations"         # demonstrations.jsonl: failing or named demonstrations
    VALIDATED = "validated"                   # validated.jsonl: the validated training set
    TRAINING_METRICS = "training_metrics"     # training_metrics.jsonl: the GRPO run a check --after-grpo judged


# The curves the HTML report draws from training metrics: (key, label, key of its spread or None).
CURVES = ((Metric.REWARD_MEAN, "reward (mean ± std)", Metric.REWARD_STD), (Metric.ACCURACY, "accuracy", None),
          (Metric.FRAC_ZERO_STD, "share of zero-variance groups", None), (Metric.KL, "KL to reference", None),
          (Metric.ENTROPY, "entropy", None), (Metric.COMPLETION_LENGTH, "completion length", None))
