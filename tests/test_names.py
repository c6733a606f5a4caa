"""Names that cross layers are written by what owns them: every check metric another layer reads is one
the check writes (names.READ_ELSEWHERE), so a renamed key fails here, not as a chart that never draws."""

from __future__ import annotations

import json

from phasecheck import plugins
from phasecheck.names import READ_ELSEWHERE, CheckId
from phasecheck.runner import CheckOptions, check_task
from phasecheck.task import DEFAULT_CHECKS, load_task
from support import write_project


def test_every_check_metric_read_elsewhere_is_written(tmp_path):
    task = load_task(write_project(tmp_path, accuracy_fn=lambda i, r, j: i % 3 != 0 or j == 0))
    _, first = check_task(task, CheckOptions(out_dir=tmp_path / "first"))
    verdict, _ = check_task(task, CheckOptions(out_dir=tmp_path / "second", compare=first))
    by_id = {c.id: c for c in verdict.checks}
    for check_id, keys in READ_ELSEWHERE.items():
        assert by_id[check_id].status.value in ("pass", "warn", "fail"), by_id[check_id].headline
        missing = [k for k in keys if k not in by_id[check_id].metrics]
        assert not missing, f"{check_id} does not write {missing}"
    json.loads(verdict.to_json())  # and they survive the verdict's one serialiser


def test_check_ids_are_the_registered_ones():
    ids = {v for k, v in vars(CheckId).items() if not k.startswith("_")}
    assert ids == set(DEFAULT_CHECKS) == set(plugins.available("checks")) & ids
    for cid in ids:
        assert plugins.load("checks", cid).id == cid
