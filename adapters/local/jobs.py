"""The local ``subprocess`` JobRunner: the shared process runner (:mod:`adapters.shared.jobs`), which the OCI API
stand-in's Data Science job runs use too."""

from adapters.shared.jobs import PASSTHROUGH_ENV, SubprocessJobRunner

__all__ = ["PASSTHROUGH_ENV", "SubprocessJobRunner"]
