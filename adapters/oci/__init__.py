"""The oci family: adapters over the ``oci`` SDK (Object Storage, Vault secrets, Logging, OCIR through the
shared Distribution client; Data Science jobs, DevOps builds and OKE still typed only), their auth, and the OCI
API stand-in (``adapters.oci.standin``) they are tested against. Flavors are declared in :mod:`.flavors`."""
