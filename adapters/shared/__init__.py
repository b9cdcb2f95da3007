"""Adapter code more than one family uses (not a family itself: it declares no flavor).

- :mod:`.distribution`: the OCI distribution API client; the local `distribution` flavor and the oci `ocir`
  flavor both speak it.
- :mod:`.jobs`: jobs as local process groups; the local `subprocess` JobRunner and the OCI API stand-in's Data
  Science job runs.
- :mod:`.jobenv`: the endpoints and credentials every JobRunner flavor hands its training jobs.
"""
