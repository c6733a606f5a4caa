"""contamination: do you have correct examples you trust? Flags recurring identifiers that nothing grounds."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from ..records import prompt_text
from ..results import Finding, Status
from ._common import Check, StrictParams, pct
from ._scan import TokenScanner, reference_tokens


class Contamination(Check):
    id = "contamination"
    question = "Do you have correct examples you trust?"

    class Params(StrictParams):
        max_rate: float = Field(0.05, gt=0, le=1, description="Share of rows an ungrounded token may reach before it is flagged.")
        min_rows: int = Field(3, ge=1, description="A token must be in at least this many rows to be flagged.")
        allow: list[str] = Field(default_factory=list, description="Tokens that are legitimate although no prompt or reference names them.")
        sources: list[Literal["demonstrations", "samples"]] = Field(default_factory=lambda: ["demonstrations", "samples"], description="What to scan: demonstrations, samples or both.")
        max_findings: int = Field(20, ge=1, description="Most flagged tokens reported per source.")
        max_example_ids: int = Field(20, ge=1, description="Row ids kept per flagged token.")
        max_tokens: int = Field(100_000, ge=100, description="Distinct ungrounded tokens tracked at once (bounds memory).")

    @classmethod
    def reads_samples(cls, params) -> bool:
        return "samples" in params.sources

    def run(self, evidence, params):
        from ..engine import Unavailable
        refs = [e.reference for e in evidence.examples]
        demos = evidence.graded_demonstrations if "demonstrations" in params.sources else []
        refs += [d.demo.reference for d in demos]
        allowed = reference_tokens(refs) | set(params.allow) | set(evidence.vocabulary)
        scanned, flagged, skipped = {}, [], None

        def scan(source: str, rows) -> None:
            sc = TokenScanner(allowed, max_tokens=params.max_tokens, max_ids=params.max_example_ids)
            for row_id, completion, prompt, correct in rows:
                sc.add(row_id, completion, prompt_text(prompt), correct)
            scanned[source] = sc.rows
            flagged.extend(dict(f, source=source)
                           for f in sc.flagged(params.max_rate, params.min_rows)[:params.max_findings])

        if demos:
            scan("demonstrations", ((d.demo.id, d.demo.completion, d.demo.prompt, d.grade.correct) for d in demos))
        if "samples" in params.sources:
            try:
                graded = evidence.graded_samples
            except Unavailable as exc:
                graded, skipped = [], str(exc)
            if graded:
                scan("samples", ((g.sample.example_id, g.sample.completion, g.example.prompt, g.grade.correct)
                                 for g in graded))
        if not scanned:
            raise Unavailable("no demonstrations and no samples to scan" + (f" ({skipped})" if skipped else ""))
        findings = [Finding(message=_message(f), example_ids=f.pop("example_ids"), data=f) for f in flagged]
        metrics = {"scanned": scanned, "flagged": len(findings), "max_rate": params.max_rate,
                   "tokens": sorted({f.data["token"] for f in findings})}
        if skipped:
            metrics["samples_skipped"] = skipped
        if not findings:
            return self.result(Status.PASS, f"no ungrounded token in ≥ {pct(params.max_rate)} of "
                                            + " or ".join(scanned), metrics)
        top = findings[0].data
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        return self.result(Status.FAIL, f"{top['token']} in {pct(top['rate'])} of {top['source']}{more}",
                           metrics, findings)


def _message(f: dict) -> str:
    link = ""
    if f["pass_rate_with"] is not None and f["pass_rate_without"] is not None:
        link = f"; verifier pass rate {pct(f['pass_rate_with'])} with it vs {pct(f['pass_rate_without'])} without"
    return (f"{f['token']} ({f['kind']}) is in {pct(f['rate'])} of {f['source']} ({f['n_rows']} rows) but in no "
            f"prompt, reference or allowed vocabulary; position consistency {f['position_consistency']:.2f}{link}")
