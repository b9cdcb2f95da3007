# Every OCID and name the oci profile of lastmile.yaml needs, and those the Data Science, DevOps and OKE flavors
# will: `terraform output -json | scripts/render-oci-profile.py` writes the profile from them
# (adapters/oci/terraform/render.py keeps the table of which output goes to which key).

output "region" {
  value = var.region
}

output "compartment_id" {
  value = local.compartment_id
}

output "namespace" {
  description = "the tenancy's Object Storage namespace, also OCIR's"
  value       = local.namespace
}

output "bucket_data" {
  value = oci_objectstorage_bucket.this["data"].name
}

output "bucket_artifacts" {
  value = oci_objectstorage_bucket.this["artifacts"].name
}

output "bucket_predictions" {
  value = oci_objectstorage_bucket.this["predictions"].name
}

output "ocir_username" {
  description = "the OCIR login: <namespace>/<username>"
  value       = "${local.namespace}/${var.ci_username}"
}

output "ocir_repository_prefix" {
  value = "${local.namespace}/${local.ocir_repository_prefix}"
}

output "ocir_repository_ids" {
  value = { for name, repo in oci_artifacts_container_repository.this : name => repo.id }
}

output "vault_id" {
  value = oci_kms_vault.this.id
}

output "vault_key_id" {
  value = oci_kms_key.this.id
}

output "ocir_auth_token_secret_id" {
  value = oci_vault_secret.this["ocir-auth-token"].id
}

output "s3_access_key_id_secret_id" {
  value = oci_vault_secret.this["s3-compat-access-key-id"].id
}

output "s3_secret_key_secret_id" {
  value = oci_vault_secret.this["s3-compat-secret-key"].id
}

output "mlflow_password_secret_id" {
  value = oci_vault_secret.this["mlflow-password"].id
}

output "datascience_project_id" {
  value = oci_datascience_project.this.id
}

output "log_group_id" {
  value = oci_logging_log_group.this.id
}

output "events_log_id" {
  description = "the pipeline's events (the oci-logging log sink)"
  value       = oci_logging_log.custom["events"].id
}

output "jobs_log_id" {
  value = oci_logging_log.custom["jobs"].id
}

output "serving_log_id" {
  value = oci_logging_log.custom["serving"].id
}

output "builds_log_id" {
  value = oci_logging_log.builds.id
}

output "devops_project_id" {
  value = oci_devops_project.this.id
}

output "devops_build_pipeline_id" {
  value = oci_devops_build_pipeline.this.id
}

output "devops_connection_id" {
  value = oci_devops_connection.github.id
}

output "devops_trigger_id" {
  value = oci_devops_trigger.push.id
}

output "devops_trigger_url" {
  description = "the URL of the webhook to add to the GitHub repository (push events)"
  value       = oci_devops_trigger.push.trigger_url
}

output "oke_cluster_id" {
  value = oci_containerengine_cluster.this.id
}

output "oke_node_pool_id" {
  value = oci_containerengine_node_pool.this.id
}

output "kubernetes_namespace" {
  value = var.kubernetes_namespace
}

output "vcn_id" {
  value = oci_core_vcn.this.id
}

output "oke_api_subnet_id" {
  value = oci_core_subnet.oke_api.id
}

output "oke_nodes_subnet_id" {
  value = oci_core_subnet.oke_nodes.id
}

output "oke_lb_subnet_id" {
  value = oci_core_subnet.oke_lb.id
}

output "jobs_subnet_id" {
  value = oci_core_subnet.jobs.id
}

output "mlflow_tracking_uri" {
  value = var.mlflow_tracking_uri
}

output "ci_group_id" {
  value = oci_identity_group.ci.id
}

output "serving_service_account" {
  description = "the serving pods' Kubernetes service account, named by the workload-identity policies"
  value       = var.serving_service_account
}
