"""The Deployer contract: rollouts a Kubernetes Deployment would report, driven by the harness's policy."""

from __future__ import annotations

import pytest

from harness.domain.errors import NotFound, UserError
from harness.pipeline.rollout import RolloutPolicy, await_revision, judge

POLICY = RolloutPolicy(deadline_s=90.0, poll_s=0.1)


class DeployerContract:
    """Fixtures: ``deployer``; ``name`` (a deployment never deployed before); ``good_spec(name)`` and
    ``broken_spec(name)`` -> DeploymentSpec, the second one of a revision whose replicas cannot load their
    model. Replicas default to 1 unless the spec says otherwise."""

    def test_a_deployment_never_deployed_has_no_revision(self, deployer, name):
        status = deployer.status(name)
        assert (status.revision, status.ready, status.replicas) == (None, 0, ())

    def test_a_deploy_rolls_out_and_serves(self, deployer, name, good_spec):
        revision = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, revision.number, POLICY) == ""
        status = deployer.status(name)
        assert status.revision == revision and status.ready == status.desired >= 1
        assert {r.revision for r in status.replicas if r.state == "ready"} == {revision.number}

    def test_a_broken_revision_crash_loops_while_the_old_one_serves(self, deployer, name, good_spec, broken_spec):
        good = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, good.number, POLICY) == ""
        broken = deployer.deploy(broken_spec(name))
        assert broken.number > good.number
        reason = await_revision(deployer, name, broken.number, POLICY)
        assert "keeps failing" in reason
        status = deployer.status(name)
        assert not judge(status, broken.number).done
        assert [r for r in status.of_revision(good.number) if r.state == "ready"]

    def test_rollback_returns_to_the_previous_revision(self, deployer, name, good_spec, broken_spec):
        good = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, good.number, POLICY) == ""
        deployer.deploy(broken_spec(name))
        back = deployer.rollback(name)
        assert back == good
        assert await_revision(deployer, name, good.number, POLICY) == ""
        assert deployer.status(name).revision == good

    def test_rollback_without_a_previous_revision_is_not_found(self, deployer, name, good_spec):
        revision = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, revision.number, POLICY) == ""
        with pytest.raises(NotFound):
            deployer.rollback(name)

    def test_numbers_are_never_reused_after_a_rollback(self, deployer, name, good_spec):
        first = deployer.deploy(good_spec(name))
        second = deployer.deploy(good_spec(name))
        assert deployer.rollback(name) == first
        third = deployer.deploy(good_spec(name))
        assert third.number > second.number
        assert await_revision(deployer, name, third.number, POLICY) == ""

    def test_scale_changes_the_number_of_ready_replicas(self, deployer, name, good_spec):
        revision = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, revision.number, POLICY) == ""
        assert deployer.scale(name, 2).desired == 2
        assert await_revision(deployer, name, revision.number, POLICY) == ""
        assert deployer.status(name).ready == 2

    @pytest.mark.parametrize("replicas", [0, -1])
    def test_scale_below_one_is_a_user_error(self, deployer, name, replicas):
        with pytest.raises(UserError):
            deployer.scale(name, replicas)

    def test_replica_metrics_come_from_each_live_replica(self, deployer, name, good_spec):
        revision = deployer.deploy(good_spec(name))
        assert await_revision(deployer, name, revision.number, POLICY) == ""
        metrics = deployer.replica_metrics(name)
        live = [r.name for r in deployer.status(name).replicas if r.state != "dead"]
        assert sorted(m.replica for m in metrics) == sorted(live)
        assert all(isinstance(m.text, str) for m in metrics)
