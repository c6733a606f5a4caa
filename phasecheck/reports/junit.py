"""JUnit XML for CI viewers (GitHub, GitLab, Jenkins): one testcase per check, the fingerprint as properties.
Built with xml.etree so escaping is right; characters XML 1.0 forbids are stripped first."""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import ClassVar

from ..results import CheckResult, Status, Verdict
from ..strict import Strict
from ..task import task_slug
from .base import Reporter
from .common import advisory, phase_label

__all__ = ["JunitReporter", "xml_safe"]

# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates and U+FFFE/U+FFFF.
_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MAX_IDS = 50


def xml_safe(text: object) -> str:
    return _FORBIDDEN.sub("", str(text))


class JunitReporter(Reporter):
    """testsuites > testsuite > testcase; fail -> <failure>, error -> <error>, skip -> <skipped>."""

    filename: ClassVar[str] = "junit.xml"

    class Params(Strict):
        """No options."""

    def render(self, verdict: Verdict, *, out_dir: Path | None = None, verbose: int = 0) -> str:
        checks = verdict.checks
        counts = {
            "tests": str(len(checks)),
            "failures": str(sum(c.status == Status.FAIL for c in checks)),
            "errors": str(sum(c.status == Status.ERROR for c in checks)),
            "skipped": str(sum(c.status == Status.SKIP for c in checks)),
            "time": _seconds(sum(c.duration_s for c in checks)),
        }
        root = ET.Element("testsuites", {"name": "phasecheck", **counts})
        suite = ET.SubElement(
            root,
            "testsuite",
            {"name": xml_safe(f"phasecheck: {verdict.task}"), **counts, "timestamp": xml_safe(verdict.created_at)},
        )
        props = ET.SubElement(suite, "properties")
        for name, value in self._properties(verdict):
            ET.SubElement(props, "property", {"name": name, "value": xml_safe(value)})
        # Jenkins splits classname on dots into package and class: keep the task part dot-free.
        classname = f"phasecheck.{task_slug(verdict.task)}"
        for check in checks:
            self._testcase(suite, check, classname)
        ET.SubElement(suite, "system-out").text = xml_safe(
            f"Status: {phase_label(verdict.status)}\nAction: {verdict.action}\n"
        )
        ET.indent(root, space="  ")
        return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

    @staticmethod
    def _properties(verdict: Verdict) -> list[tuple[str, str]]:
        fp = verdict.fingerprint
        props = [
            ("phasecheck.status", verdict.status.value),
            ("fingerprint.digest", fp.digest),
            ("fingerprint.task", fp.task),
            ("fingerprint.model", fp.model or ""),
            ("fingerprint.sampling", fp.sampling),
            ("fingerprint.version", fp.version),
        ]
        props += [(f"fingerprint.data.{role}", digest) for role, digest in sorted(fp.data.items())]
        if verdict.model:
            props.append(("model", verdict.model))
        if verdict.command:
            props.append(("command", shlex.join(verdict.command)))
        return props

    @staticmethod
    def _testcase(suite: ET.Element, check: CheckResult, classname: str) -> None:
        name = f"{check.id}: {check.question}" + (" (advisory)" if advisory(check) else "")
        case = ET.SubElement(
            suite, "testcase", {"classname": classname, "name": xml_safe(name), "time": _seconds(check.duration_s)}
        )
        message = xml_safe(check.headline)
        body = xml_safe(f"{check.question} {check.headline}\n{_findings_text(check)}".strip())
        if check.status == Status.FAIL:
            ET.SubElement(
                case, "failure", {"message": message, "type": "advisory" if advisory(check) else "blocking"}
            ).text = body
        elif check.status == Status.ERROR:
            ET.SubElement(case, "error", {"message": message, "type": "CheckError"}).text = body
        elif check.status == Status.SKIP:
            ET.SubElement(case, "skipped", {"message": message})
        else:
            # pass and warn both pass; a warning's evidence goes where viewers show test output.
            text = f"{check.status.value.upper()}: {check.headline}\n{_findings_text(check)}".strip()
            ET.SubElement(case, "system-out").text = xml_safe(text)


def _findings_text(check: CheckResult) -> str:
    lines = []
    for f in check.findings:
        ids = f.example_ids[:_MAX_IDS]
        more = f" (+{len(f.example_ids) - _MAX_IDS} more)" if len(f.example_ids) > _MAX_IDS else ""
        lines.append(f"- {f.message}" + (f" [rows: {', '.join(ids)}{more}]" if ids else ""))
    return "\n".join(lines)


def _seconds(value: float) -> str:
    return f"{max(0.0, float(value)):.3f}"
