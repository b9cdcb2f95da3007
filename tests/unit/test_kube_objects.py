"""The front door's pure parts: patches, selectors, the Deployment's conditions, what is not an OKE token."""

from __future__ import annotations

import base64

import pytest

from adapters.local.deployer import kubeobjects as ko
from adapters.local.deployer.kubeauth import decode


def test_a_merge_patch_replaces_lists_and_removes_nulls():
    target = {"a": {"b": 1, "c": 2}, "l": [{"name": "x", "v": 1}]}
    patched = ko.merge_patch(target, {"a": {"c": None, "d": 3}, "l": [{"name": "y"}]})
    assert patched == {"a": {"b": 1, "d": 3}, "l": [{"name": "y"}]}
    assert target["a"] == {"b": 1, "c": 2}  # the target is not changed


def test_a_strategic_patch_merges_named_items_by_name():
    target = {"containers": [{"name": "serving", "image": "a", "env": [{"name": "A", "value": "1"}]}]}
    patched = ko.merge_patch(target, {"containers": [{"name": "serving", "image": "b",
                                                      "env": [{"name": "B", "value": "2"}]}]}, strategic=True)
    (container,) = patched["containers"]
    assert container["image"] == "b" and container["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=x", True), ("app==x,tier=web", True), ("app=y", False), ("app!=y", True), ("app!=x", False),
    ("tier", True), ("!tier", False), ("missing", False), ("!missing", True), ("", True)])
def test_equality_based_label_selectors(selector, expected):
    assert ko.selector_matches(selector, {"app": "x", "tier": "web"}) is expected


def _deployment(replicas: int = 2, deadline: int = 10, max_unavailable: int | str = 0) -> dict:
    return {"metadata": {"name": "churn", "generation": 3},
            "spec": {"replicas": replicas, "progressDeadlineSeconds": deadline,
                     "strategy": {"rollingUpdate": {"maxUnavailable": max_unavailable}}}}


def _controller(*states: tuple[int, str], current: int = 2, message: str = "") -> dict:
    return {"revision": {"number": current}, "message": message,
            "replicas": [{"name": f"p{i}", "revision": rev, "state": state} for i, (rev, state) in enumerate(states)]}


def _conditions(status: dict) -> dict:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


def test_a_complete_rollout_is_available_and_has_progressed():
    status = ko.deployment_status(_deployment(), _controller((2, "ready"), (2, "ready")), {}, 0.0)
    assert _conditions(status) == {"Available": ("True", "MinimumReplicasAvailable"),
                                   "Progressing": ("True", "NewReplicaSetAvailable")}
    assert (status["observedGeneration"], status["readyReplicas"], status["updatedReplicas"]) == (3, 2, 2)


def test_a_rollout_in_progress_is_progressing_until_its_deadline_then_exceeds_it():
    progress: dict = {}
    rolling = _controller((1, "ready"), (1, "ready"), (2, "starting"), message="rolling out revision 2")
    assert _conditions(ko.deployment_status(_deployment(), rolling, progress, 0.0))["Progressing"] == \
        ("True", "ReplicaSetUpdated")
    late = ko.deployment_status(_deployment(), rolling, progress, 11.0)
    assert _conditions(late)["Progressing"] == ("False", "ProgressDeadlineExceeded")
    assert _conditions(late)["Available"] == ("True", "MinimumReplicasAvailable")


def test_a_new_ready_replica_is_progress_and_restarts_the_deadline():
    progress: dict = {}
    ko.deployment_status(_deployment(), _controller((1, "ready"), (2, "starting"), message="m"), progress, 0.0)
    better = _controller((1, "ready"), (2, "ready"), (2, "starting"), message="m")
    assert _conditions(ko.deployment_status(_deployment(), better, progress, 9.0))["Progressing"][0] == "True"
    assert _conditions(ko.deployment_status(_deployment(), better, progress, 15.0))["Progressing"][0] == "True"


def test_too_few_ready_replicas_is_unavailable_with_max_unavailable_as_a_percentage():
    status = ko.deployment_status(_deployment(4, max_unavailable="25%"), _controller((2, "ready"), (2, "ready")),
                                  {}, 0.0)
    assert _conditions(status)["Available"] == ("False", "MinimumReplicasUnavailable")
    assert ko.int_or_percent("25%", 4) == 1


def test_an_image_by_tag_cannot_be_a_revision(tmp_path):
    template = {"spec": {"containers": [{"name": "s", "image": "serving:latest", "env": []}]}}
    with pytest.raises(ko.ApiError) as caught:
        ko.revision_spec("churn", template, tmp_path)
    assert caught.value.code == 422 and caught.value.status()["reason"] == "Invalid"


@pytest.mark.parametrize("token", ["", "not base64!", base64.urlsafe_b64encode(b"https://x/other").decode()])
def test_what_is_not_an_oke_token_decodes_to_nothing(token):
    assert decode(token) is None


@pytest.mark.parametrize(("returncode", "expected"), [(3, 3), (0, 0), (-9, 137), (-15, 143), (None, 1)])
def test_a_containers_exit_code_is_the_processs_own_or_128_plus_its_signal(returncode, expected):
    assert ko.exit_code(returncode) == expected


def test_a_dead_replicas_pod_is_crash_looping_with_its_last_exit():
    replica = {"name": "r1", "state": "dead", "restarts": 2, "detail": "does not reproduce; last exit code 3",
               "exit_code": 3}
    pod = ko.pod(replica, "ns", {"spec": {"containers": [{"image": "x@sha256:ab"}]}}, "h", bundle_ok=True)
    (container,) = pod["status"]["containerStatuses"]
    assert container["state"]["waiting"]["reason"] == "CrashLoopBackOff" and container["restartCount"] == 2
    assert container["lastState"]["terminated"]["exitCode"] == 3
