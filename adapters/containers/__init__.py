"""Adapters of the containers profile: the Docker image builder (:mod:`.builder`), container training jobs
(:mod:`.jobs`), both on Docker's own SDK (:mod:`.engine`); their flavors are in :mod:`.flavors`."""
