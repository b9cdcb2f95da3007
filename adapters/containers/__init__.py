"""Adapters of the containers profile (Docker images, container jobs, kind). Not built yet: the wiring
has no factory for their flavors, so `lastmile doctor` reports the profile as not runnable here."""
