"""The SourceTrigger contract: what changed since a commit, with git's view of a first run."""

from __future__ import annotations

import pytest

from harness.domain.errors import UserError


class SourceTriggerContract:
    """Fixtures: ``trigger``; ``commit(paths) -> sha``, which commits new files at those paths."""

    def test_head_is_the_last_commit(self, trigger, commit):
        commit(["a.txt"])
        last = commit(["b.txt"])
        assert trigger.head() == last

    def test_with_no_base_every_path_is_a_change(self, trigger, commit):
        commit(["training/a.py"])
        head = commit(["serving/b.py"])
        changes = trigger.changes(None)
        assert (changes.head, changes.base) == (head, None)
        assert set(changes.paths) == {"training/a.py", "serving/b.py"}

    def test_changes_since_a_commit_are_those_after_it(self, trigger, commit):
        base = commit(["training/a.py"])
        commit(["serving/b.py"])
        head = commit(["docs/c.md"])
        changes = trigger.changes(base)
        assert (changes.head, changes.base) == (head, base)
        assert changes.paths == ("docs/c.md", "serving/b.py")

    def test_a_base_no_longer_in_history_is_a_first_run(self, trigger, commit):
        commit(["training/a.py"])
        changes = trigger.changes("0" * 40)
        assert changes.base is None and changes.paths == ("training/a.py",)

    def test_a_history_without_commits_is_a_user_error(self, trigger):
        with pytest.raises(UserError):
            trigger.head()
