"""Adapters of the oci profile, over the ``oci`` SDK (Object Storage, OCIR, Data Science jobs, OKE,
Vault, Logging, DevOps). Not built yet: the wiring has no factory for their flavors, so
`lastmile doctor` reports the profile as not runnable here."""
