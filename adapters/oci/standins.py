"""The oci family's stand-in as ``lastmile up`` starts it: the OCI API stand-in, prepared for the profile's ports
(its logs, the S3 keys in its vault, the buckets, where Data Science job runs live and how they pull, the
DevOps build pipeline and the OKE cluster)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.domain.records import SecretRef

from .flavors import (
    FAMILY,
    STANDIN,
    DataScienceJobs,
    DevOpsBuilder,
    OciLogging,
    OciObjectStore,
    Ocir,
    OkeDeployer,
    VaultSecrets,
)

if TYPE_CHECKING:
    from harness.bootstrap import Harness
    from harness.infra.standin import StandIn


def oci_standins(h: Harness) -> list[StandIn]:
    """The OCI API stand-in, when a port of the profile points at it (``endpoint: standin``): the oci-local
    profile. It starts before the local stand-ins, which keep their generated credentials in its vault."""
    ports = [config for _, config in h.settings.ports if type(config) in FAMILY.configs]
    if not any(getattr(c, "endpoint", None) == STANDIN or getattr(c, "search_endpoint", None) == STANDIN
               for c in ports if not isinstance(c, Ocir)):
        return []
    from adapters.oci.standin.standin import OciApiStandIn

    store = h.settings.ports.object_store
    logs = [(c.log_id, c.log_group_id or "", c.compartment_id or "") for c in ports if isinstance(c, OciLogging)]
    logs += [(c.log_id, c.log_group_id, c.compartment_id) for c in ports if isinstance(c, DataScienceJobs)]
    jobs = _job_runs(h, ports)
    buckets = [h.settings.buckets.data, h.settings.buckets.artifacts, h.settings.buckets.predictions]

    vaults = [c for c in ports if isinstance(c, VaultSecrets)]

    class Standin(OciApiStandIn):
        wave = 0

        def prepare(self, port: int) -> None:
            super().prepare(port)
            for config in ports:
                if isinstance(config, DevOpsBuilder) and config.endpoint == STANDIN:
                    config.register_in_standin(self.server_state, h)
            if vaults and isinstance(store, OciObjectStore) and store.s3_access_key_id and store.s3_secret_key:
                from adapters.oci.standin import vault

                for ref, value in ((store.s3_access_key_id, self.s3_key.access_key_id),
                                   (store.s3_secret_key, self.s3_key.secret_key)):
                    vault.put_secret(self.server_state, SecretRef.parse(ref).name, vaults[0].vault_id, value)
            kube_port = h.settings.standins.deployer.kube_port
            for oke in (c for c in ports if isinstance(c, OkeDeployer) and c.endpoint == STANDIN):
                server = oke.standin_api_server or (f"http://127.0.0.1:{kube_port}" if kube_port else None)
                if server:  # Terraform makes the cluster in a tenancy; here, the stand-in's state
                    from adapters.oci.standin import containerengine_api

                    containerengine_api.register_cluster(self.server_state, oke.cluster_id, server,
                                                         oke.region or region)

        def after_ready(self, url: str) -> None:
            """Terraform makes the buckets in a tenancy; here, ``up`` does, on the stand-in's own address: the
            front door routes to this start of it only once the whole wave is ready."""
            if isinstance(store, OciObjectStore):
                direct = store.open_at(h, url)
                for bucket in buckets:
                    direct.ensure_bucket(bucket)

    namespace = getattr(store, "namespace", "") or "lastmile"
    region = getattr(store, "region", "") or "eu-frankfurt-1"
    return [Standin(h.settings.standins.oci.port, h.settings.state_dir, namespace=namespace, region=region,
                    logs=logs, jobs_dir=jobs.get("jobs_dir"), registry_username=jobs.get("registry_username", ""),
                    registry_password_secret=jobs.get("registry_password_secret", ""))]


def _job_runs(h: Harness, ports: list) -> dict[str, str]:
    """What the stand-in's Data Science job runs need when the job runner points at it: the lastmile state dir
    (runs in its ``jobs/``, where ``job:current`` faults look) and the OCIR login whose auth token is a secret of
    the stand-in's own Vault (the profile's secret store), to pull the job images from the registry stand-in."""
    if not any(isinstance(c, DataScienceJobs) and c.endpoint == STANDIN for c in ports):
        return {}
    from adapters.oci.ocir import ocir_login

    found: dict[str, str] = {"jobs_dir": str(h.settings.state_dir)}
    registry = h.settings.ports.artifact_registry
    if isinstance(registry, Ocir):
        found["registry_username"] = ocir_login(registry.namespace, registry.username)
        found["registry_password_secret"] = SecretRef.parse(registry.auth_token).name
    return found
