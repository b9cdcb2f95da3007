"""A Chaos Toolkit control that makes ``chaos run`` conclude a drill as ``lastmile drill run`` does.

Declared in a drill (the examples in ``scenarios/drills/`` do)::

    controls:
      - name: lastmile
        provider: {type: python, module: harness.drills.control}

after the experiment (rollbacks included) it reverts the drill's faults still active, checks the invariants,
decides the verdict and adds them to Chaos Toolkit's journal under ``lastmile``, masking secret values. The exit
code of ``chaos run`` stays Chaos Toolkit's (status and deviation only); ``lastmile drill run`` exits on the
verdict. Under lastmile's own runner the control stands aside: the runner concludes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from harness.drills import invariants, leaks
from harness.drills.context import current, harness_for, runner_active
from harness.drills.runner import champion_set, settle
from harness.drills.verdict import decide

log = logging.getLogger("lastmile.drills")

_before: dict[str, bool] = {}


def before_experiment_control(context: Any, configuration: Mapping[str, Any] | None = None, **_: Any) -> None:
    """Note whether @champion is set before the drill (the champion invariant then requires it after)."""
    if not runner_active():
        _before["champion_required"] = champion_set(harness_for(configuration))


def after_experiment_control(context: Any, state: dict[str, Any], configuration: Mapping[str, Any] | None = None,
                             **_: Any) -> None:
    """Revert the drill's faults, check the invariants, and add lastmile's verdict to the journal (``state``)."""
    if runner_active() or not isinstance(state, dict):
        return
    h, drill = harness_for(configuration), current()
    settle(h, drill)
    texts = {"the drill's Chaos Toolkit journal": json.dumps(state, default=str)}
    found = invariants.check(h, output=texts, champion_required=_before.get("champion_required", False))
    verdict = decide(state, drill.to_json(), found)
    log.info("lastmile verdict: %s (%s)", verdict.name, verdict.reason)
    state["lastmile"] = {"verdict": verdict.name, "reason": verdict.reason, "faults": drill.to_json(),
                         "invariants": found}
    state.update(leaks.redact(json.loads(json.dumps(state, default=str)), leaks.secret_values(h).values()))
