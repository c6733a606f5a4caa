"""Names that cross layers, defined once: the built-in checks' ids and the keys of their metrics that other
layers read, the keys of a training run's metrics.jsonl rows, and the artifacts a verdict lists beside itself.
Checks and training write them, reports, training and the runner read them; none spells the string."""

from __future__ import annotations

__all__ = ["CheckId", "CheckMetric", "READ_ELSEWHERE", "Metric", "Artifact", "CURVES"]


class CheckId:
    """Ids of the built-in checks."""

    VALIDATED_SET = "validated_set"
    CONTAMINATION = "contamination"
    BASE_MODEL = "base_model"
    STABILITY = "stability"
    GRPO_READINESS = "grpo_readiness"
    DIVERSITY = "diversity"


class CheckMetric:
    """Keys of a built-in check's metrics that something outside the check reads."""

    PER_RUN_ACCURACY = "per_run_accuracy"  # base_model: the HTML report's run bars
    PER_RUN_ACCURACY_CI = "per_run_accuracy_ci"
    THRESHOLD = "threshold"
    PER_SCENARIO = "per_scenario"  # base_model and validated_set: scenario charts, --compare
    PER_PROMPT = "per_prompt"  # stability: the next --compare's per-prompt baseline
    REGRESSED = "regressed"  # stability under --compare: the verdict's diff, inspect
    GROUP_SIZE = "group_size"  # grpo_readiness: set beside GRPO's first step
    ZERO_VARIANCE_SHARE = "zero_variance_share"
    ZERO_VARIANCE_CI = "zero_variance_ci"
    EXACT = "exact"
    COVERAGE = "coverage"  # diversity: the pass@k / pass^k curve, drawn by the HTML report, a line of the text one
    COVERAGE_BEFORE = "coverage_before"  # diversity under --compare: the earlier verdict's curve, drawn dashed
    COVERAGE_CHANGE = "coverage_change"  # diversity under --compare: pass@1 and pass@large-k up, down or no claim


# Which check writes each key read elsewhere (tests/test_names.py runs the checks and holds them to it).
READ_ELSEWHERE = {
    CheckId.BASE_MODEL: (
        CheckMetric.PER_RUN_ACCURACY,
        CheckMetric.PER_RUN_ACCURACY_CI,
        CheckMetric.THRESHOLD,
        CheckMetric.PER_SCENARIO,
    ),
    CheckId.VALIDATED_SET: (CheckMetric.PER_SCENARIO,),
    CheckId.STABILITY: (CheckMetric.PER_PROMPT, CheckMetric.REGRESSED),
    CheckId.GRPO_READINESS: (
        CheckMetric.GROUP_SIZE,
        CheckMetric.ZERO_VARIANCE_SHARE,
        CheckMetric.ZERO_VARIANCE_CI,
        CheckMetric.EXACT,
    ),
    CheckId.DIVERSITY: (CheckMetric.COVERAGE, CheckMetric.COVERAGE_BEFORE),
}


class Metric:
    """Keys of one metrics.jsonl row (builtin GRPO, SFT, GFT and DPO, and the TRL backend's renamed logs)."""

    STEP = "step"
    TOTAL_STEPS = "total_steps"
    LOSS = "loss"
    EVAL_LOSS = "eval_loss"
    REWARD_MEAN = "reward_mean"
    REWARD_STD = "reward_std"
    FRAC_ZERO_STD = "frac_zero_std"
    FRAC_ZERO_STD_CI = "frac_zero_std_ci"
    GROUPS = "groups"  # GRPO groups in the step (prompts x 1), what frac_zero_std is a share of
    KL = "kl"
    ENTROPY = "entropy"
    CLIP_FRAC = "clip_frac"
    COMPLETION_LENGTH = "completion_length"
    TRUNCATED_FRAC = "truncated_frac"
    ACCURACY = "accuracy"
    GRAD_NORM = "grad_norm"
    LR = "lr"
    # DPO, under TRL's own names so its log rows need no renaming: beta * (log pi - log pi_ref) of the
    # chosen and the rejected completion, their difference, and the share of pairs where chosen's is larger.
    REWARDS_CHOSEN = "rewards/chosen"
    REWARDS_REJECTED = "rewards/rejected"
    REWARD_MARGIN = "rewards/margins"
    PREFERENCE_ACCURACY = "rewards/accuracies"
    LOGPS_CHOSEN = "logps/chosen"
    LOGPS_REJECTED = "logps/rejected"
    PAIRS = "pairs"  # preference pairs in the step
    ADVANTAGE_STD = "advantage_std"  # GFT: spread of the step's group-normalised advantages
    DEMO_ADVANTAGE = "demo_advantage"  # GFT: mean advantage of the demonstrations in the step's groups
    CLIPPED_COEF_FRAC = "clipped_coef_frac"  # GFT: share of tokens whose coefficient DCR rectified (p <= tau)


class Artifact:
    """Names in Verdict.artifacts; each maps to a file beside verdict.json."""

    SAMPLES = "samples"  # samples.jsonl: every graded sample
    DEMONSTRATIONS = "demonstrations"  # demonstrations.jsonl: failing or named demonstrations
    VALIDATED = "validated"  # validated.jsonl: the validated training set
    PROMPTS = "prompts"  # prompts.jsonl: the per-prompt table (pass rate, reward spread, zero-variance chance)
    TRAINING_METRICS = "training_metrics"  # training_metrics.jsonl: the GRPO run a check --after-grpo judged


# The curves the HTML report draws from training metrics: (key, label, key of its spread or None).
CURVES = (
    (Metric.REWARD_MEAN, "reward (mean ± std)", Metric.REWARD_STD),
    (Metric.ACCURACY, "accuracy", None),
    (Metric.FRAC_ZERO_STD, "share of zero-variance groups", None),
    (Metric.KL, "KL to reference", None),
    (Metric.ENTROPY, "entropy", None),
    (Metric.COMPLETION_LENGTH, "completion length", None),
)
