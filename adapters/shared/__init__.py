"""Adapter code more than one family uses (not a family itself: it declares no flavor).

- :mod:`.distribution`: the OCI distribution API client; the local `distribution` flavor and the oci `ocir`
  flavor both speak it.
"""
