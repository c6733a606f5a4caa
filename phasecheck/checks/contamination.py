"""contamination: do you have correct examples you trust? Flags recurring tokens that nothing in the task
grounds and that the evidence ties to wrong answers; ordinary notation and prose are not contamination."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..names import CheckId
from ..records import prompt_text
from ._common import Check, Condition, Finding, Measurement, Status, StrictParams, Unavailable, pct
from ._judge import message, scan
from ._scan import reference_tokens


class Contamination(Check):
    id = CheckId.CONTAMINATION
    question = "Do you have correct examples you trust?"

    class Params(StrictParams):
        max_rate: float = Field(
            0.05,
            gt=0,
            le=1,
            description="Share of rows an ungrounded token may reach before it is judged (below it, nothing is reported).",
        )
        min_rows: int = Field(3, ge=1, description="A token must be in at least this many rows to be judged.")
        alpha: float = Field(
            0.01,
            gt=0,
            lt=1,
            description="Family-wise significance for the verifier link: the one-sided Fisher exact p-value that rows with the token pass less often, times the number of tokens tested (Bonferroni), must be below this.",
        )
        max_pass_ratio: float = Field(
            0.5,
            gt=0,
            lt=1,
            description="The link also needs a large effect: rows with the token pass at most this fraction as often as rows without it.",
        )
        task_ground_ratio: float = Field(
            0.1,
            gt=0,
            description="A token counts as the task's own vocabulary, never flagged, when its share of the task's distinct prompts is at least this times its share of completions.",
        )
        without_verifier: Literal["warn", "fail"] = Field(
            "warn",
            description="What a recurring ungrounded name is when the verifier cannot speak (no references, or too few judged rows): warn, or fail when its position consistency reaches min_position_consistency.",
        )
        min_position_consistency: float = Field(
            0.8,
            ge=0,
            le=1,
            description="Position consistency (1 = always the same spot, 0 = uniform) a name needs to fail under without_verifier: fail.",
        )
        phrases: bool = Field(
            True,
            description="Also look for made-up terms in plain words (word pairs), judged only on their link to wrong answers.",
        )
        max_phrases: int = Field(200, ge=1, description="Most candidate word pairs counted exactly in the second pass.")
        allow: list[str] = Field(
            default_factory=list, description="Tokens that are legitimate although no prompt or reference names them."
        )
        sources: list[Literal["demonstrations", "samples"]] = Field(
            default_factory=lambda: ["demonstrations", "samples"],
            description="What to scan: demonstrations, samples or both.",
        )
        max_findings: int = Field(20, ge=1, description="Most flagged tokens reported per source.")
        max_example_ids: int = Field(20, ge=1, description="Rows kept per flagged token.")
        max_tokens: int = Field(
            100_000, ge=100, description="Distinct ungrounded tokens tracked at once (bounds memory)."
        )

    # The tokens' tiers (fail: tied to wrong answers; warn: a name to review) are weighed while measuring
    # (_judge.py, with these params); the conditions turn the tiers into the check's status.
    conditions = (
        Condition("no recurring ungrounded token tied to wrong answers", lambda m, p: not m["flagged"]),
        Condition("no recurring ungrounded name left to review", lambda m, p: not m["to_review"], fails_as=Status.WARN),
    )

    @classmethod
    def reads_samples(cls, params) -> bool:
        return "samples" in params.sources

    def measure(self, evidence, params):
        refs = [e.reference for e in evidence.examples]
        demos = evidence.graded_demonstrations if "demonstrations" in params.sources else []
        refs += [d.demo.reference for d in demos]
        allowed = reference_tokens(refs) | set(params.allow) | set(evidence.vocabulary)
        # Whole-task grounding: every prompt of the task, eval and train alike.
        prompts = [prompt_text(e.prompt) for e in evidence.examples]
        prompts += [prompt_text(d.demo.prompt) for d in demos]
        scanned, judged, findings, skipped = {}, {}, [], None
        quiet: dict[str, list] = {}

        def run_source(source: str, rows) -> None:
            sc, cands = scan(rows, allowed, prompts, params)
            scanned[source] = sc.rows
            judged[source] = sc.judged
            kept = [c for c in cands if c["severity"] != "none"]
            kept.sort(key=lambda c: (c["severity"] != "fail", -c["n_rows"], c["token"]))
            findings.extend(_finding(c, source) for c in kept[: params.max_findings])
            quiet[source] = [_brief(c) for c in cands if c["severity"] == "none"][:20]

        if demos:
            run_source(
                "demonstrations",
                lambda: ((d.demo.id, d.demo.completion, prompt_text(d.demo.prompt), d.grade.correct) for d in demos),
            )
        if "samples" in params.sources:
            try:
                graded = evidence.graded_samples
            except Unavailable as exc:
                graded, skipped = [], str(exc)
            if graded:
                run_source(
                    "samples",
                    lambda: (
                        (
                            (g.sample.example_id, g.sample.run, g.sample.index),
                            g.sample.completion,
                            prompt_text(g.example.prompt),
                            g.grade.correct,
                        )
                        for g in graded
                    ),
                )
        if not scanned:
            raise Unavailable("no demonstrations and no samples to scan" + (f" ({skipped})" if skipped else ""))
        return _measured(scanned, judged, findings, quiet, skipped, params)


def _measured(scanned, judged, findings, quiet, skipped, params) -> Measurement:
    fails = [f for f in findings if f.data["severity"] == "fail"]
    warns = [f for f in findings if f.data["severity"] == "warn"]
    unjudged = [s for s in scanned if not judged[s]]
    rests_on = (
        "the verifier link (Fisher exact, Bonferroni), whole-task grounding, recurrence and position"
        if not unjudged
        else f"recurrence, grounding and position only for {' and '.join(unjudged)}: no row could be "
        f"judged by the verifier (no references), so nothing there can be tied to wrong answers"
    )
    metrics = {
        "scanned": scanned,
        "judged": judged,
        "flagged": len(fails),
        "to_review": len(warns),
        "max_rate": params.max_rate,
        "alpha": params.alpha,
        "rests_on": rests_on,
        "tokens": sorted({f.data["token"] for f in fails}),
        "review_tokens": sorted({f.data["token"] for f in warns}),
        "not_flagged": quiet,
    }
    if skipped:
        metrics["samples_skipped"] = skipped
    where = " or ".join(scanned)
    caveat = " (no references: verifier silent)" if unjudged else ""
    if fails:
        top = fails[0].data
        more = f" (+{len(fails) - 1} more)" if len(fails) > 1 else ""
        headline = f"{top['token']} in {pct(top['rate'])} of {top['source']}, tied to wrong answers{more}"
    elif warns:
        names = ", ".join(f.data["token"] for f in warns[:3]) + (" ..." if len(warns) > 3 else "")
        headline = (
            f"{len(warns)} recurring ungrounded token{'s' if len(warns) > 1 else ''} to review, none tied "
            f"to wrong answers: {names}{caveat}"
        )
    else:
        headline = f"no ungrounded token tied to wrong answers in {where}{caveat}"
    return Measurement(metrics, headline, fails + warns)


def _finding(c: dict, source: str) -> Finding:
    ids, rows = [], []
    for rid in c.pop("example_ids"):
        if isinstance(rid, tuple):  # a sample: (example id, run, index)
            rows.append(f"{rid[0]} (run {rid[1]}, #{rid[2]})")
            rid = rid[0]
        if rid not in ids:
            ids.append(rid)
    data = dict(c, source=source)
    if rows:
        data["samples"] = rows
    return Finding(message=message(c, source), example_ids=ids, data=data)


def _brief(c: dict) -> dict:
    why = "grounded by the task's prompts" if c["grounded_by_task"] else f"{c['family']}, verifier: {c['verifier']}"
    return {"token": c["token"], "rate": round(c["rate"], 4), "why": why}
