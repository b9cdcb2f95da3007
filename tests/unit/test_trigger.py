"""Stage 1 rules: glob matching, include/exclude selection and the build plan."""

from __future__ import annotations

import pytest

from harness.config.flavors import TriggerConfig as GitTrigger
from harness.domain.records import ChangeSet
from harness.domain.trigger import BuildPlan, matches, nothing_to_do, plan_builds, select


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        # ** at the start: zero or more leading directories
        ("README.md", "**/*.md", True),
        ("docs/guide/intro.md", "**/*.md", True),
        ("docs/guide/intro.mdx", "**/*.md", False),
        # ** in the middle: zero or more directories between
        ("training/train.py", "training/**/*.py", True),
        ("training/a/b/train.py", "training/**/*.py", True),
        ("serving/train.py", "training/**/*.py", False),
        ("a/b", "a/**/b", True),
        ("a/x/y/b", "a/**/b", True),
        ("a/x/y/bc", "a/**/b", False),
        # ** at the end: everything under a directory, not the directory name itself
        ("training/train.py", "training/**", True),
        ("training/data/raw/x.csv", "training/**", True),
        ("training", "training/**", False),
        ("training-old/x.py", "training/**", False),
        ("anything/at/all.txt", "**", True),
        # a trailing / names a directory's contents; a bare name only a file
        ("training/sub/train.py", "training/", True),
        ("training/sub/train.py", "training", False),
        # * stays inside one segment
        ("training/train.py", "training/*", True),
        ("training/sub/train.py", "training/*", False),
        ("training/sub/train.py", "training/*.py", False),
        ("notes.md", "*.md", True),
        ("docs/notes.md", "*.md", False),
        ("a/b/c.txt", "*/b/*.txt", True),
        # ? is one character, never /
        ("model_v1.pkl", "model_v?.pkl", True),
        ("model_v10.pkl", "model_v?.pkl", False),
        ("a/b", "a?b", False),
        # sets, escapes and literal characters
        ("data/part-3.csv", "data/part-[0-9].csv", True),
        ("data/part-x.csv", "data/part-[!0-9].csv", True),
        ("data/part-3.csv", "data/part-[!0-9].csv", False),
        ("a*b.txt", r"a\*b.txt", True),
        ("axb.txt", r"a\*b.txt", False),
        ("requirements.txt", "requirements.txt", True),
        ("requirementsXtxt", "requirements.txt", False),
        ("Training/x.py", "training/**", False),
        # a leading / or ./ on a pattern is the repo root
        ("Dockerfile", "/Dockerfile", True),
        ("serving/Dockerfile", "./serving/Dockerfile", True),
    ],
)
def test_matches(path, pattern, expected):
    assert matches(path, pattern) is expected


@pytest.mark.parametrize(
    ("include", "exclude", "expected"),
    [
        (("training/**",), (), ["training/train.py", "training/README.md"]),
        (("training/**",), ("**/*.md",), ["training/train.py"]),
        # exclude filters the output of include: it removes training/README.md and adds nothing back
        (("**/*.md",), ("training/**",), ["README.md"]),
        (("training/**", "serving/**"), ("**/*.md",), ["training/train.py", "serving/app.py"]),
        # no include pattern means every path is included, as in OCI DevOps
        ((), ("**/*.md",), ["training/train.py", "serving/app.py"]),
        (("nothing/**",), (), []),
    ],
)
def test_select(include, exclude, expected):
    paths = ["training/train.py", "README.md", "training/README.md", "serving/app.py"]
    assert select(paths, include, exclude) == expected


RULES = GitTrigger(flavor="git")  # training/**, serving/**, exclude **/*.md


def _changes(*paths: str, base: str | None = "b" * 40) -> ChangeSet:
    return ChangeSet(head="a" * 40, base=base, paths=tuple(paths))


@pytest.mark.parametrize(
    ("paths", "training", "serving"),
    [
        (("training/train.py",), True, False),
        (("serving/app.py",), False, True),
        (("training/train.py", "serving/app.py"), True, True),
        (("training/README.md", "serving/docs/api.md"), False, False),
        (("README.md", "Makefile"), False, False),
        ((), False, False),
    ],
)
def test_plan_builds_follows_the_filters(paths, training, serving):
    plan = plan_builds(_changes(*paths), RULES)
    assert (plan.training, plan.serving) == (training, serving)
    assert nothing_to_do(plan) is (not training and not serving)


def test_plan_lists_the_paths_that_call_for_each_build():
    plan = plan_builds(_changes("training/train.py", "training/README.md", "serving/app.py", "README.md"), RULES)
    assert plan.training_paths == ("training/train.py",)
    assert plan.serving_paths == ("serving/app.py",)
    assert "training/train.py" in plan.reason and "serving/app.py" in plan.reason


def test_plan_says_why_there_is_nothing_to_do():
    plan = plan_builds(_changes("docs/index.md"), RULES)
    assert nothing_to_do(plan)
    assert "no change" in plan.reason and "bbbbbbbbbbbb" in plan.reason


def test_first_run_builds_both_even_without_matching_paths():
    plan = plan_builds(_changes("README.md", base=None), RULES)
    assert (plan.training, plan.serving, plan.reason) == (True, True, "first run")
    assert not nothing_to_do(plan)


def test_a_last_good_commit_gone_from_history_is_said_so_not_called_a_first_run():
    since = "c" * 40
    plan = plan_builds(_changes("README.md", base=None), RULES, since=since)
    assert (plan.training, plan.serving) == (True, True)
    assert plan.reason == "the last good commit cccccccccccc is no longer in history; building everything"


def test_force_builds_both_when_nothing_changed():
    plan = plan_builds(_changes("README.md"), RULES, force=True)
    assert (plan.training, plan.serving, plan.reason) == (True, True, "forced")


def test_custom_rules_are_honoured():
    rules = GitTrigger(flavor="git", training_paths=("src/model/**", "params.yaml"), serving_paths=("src/api/*.py",),
                       exclude=("src/model/notebooks/**",))
    plan = plan_builds(_changes("params.yaml", "src/api/sub/x.py", "src/model/notebooks/eda.ipynb"), rules)
    assert plan == BuildPlan(True, False, ("params.yaml",), (), plan.reason)
