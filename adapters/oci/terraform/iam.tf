# Identity: the compartment everything lives in, the dynamic groups of the principals that act on their own (Data
# Science job runs, DevOps build pipelines and connections, OKE worker nodes), the group of the user lastmile runs
# as, and least-privilege policies. Every statement names the lastmile compartment; none grants
# `manage all-resources`; `any-user` appears only with a where clause naming the OKE workload (workload identity:
# the serving pods' service account in this cluster). IAM changes go to the home region.

resource "oci_identity_compartment" "lastmile" {
  provider       = oci.home
  compartment_id = var.parent_compartment_id
  name           = var.name_prefix
  description    = "lastmile: the oci profile's resources"
  enable_delete  = false
  freeform_tags  = local.tags
}

resource "oci_identity_dynamic_group" "jobruns" {
  provider       = oci.home
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-datascience-jobruns"
  description    = "lastmile: Data Science job runs in its compartment"
  matching_rule  = "ALL {resource.type = 'datasciencejobrun', resource.compartment.id = '${local.compartment_id}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_dynamic_group" "builds" {
  provider       = oci.home
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-devops-builds"
  description    = "lastmile: DevOps build pipelines (their build runs) in its compartment"
  matching_rule  = "ALL {resource.type = 'devopsbuildpipeline', resource.compartment.id = '${local.compartment_id}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_dynamic_group" "connections" {
  provider       = oci.home
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-devops-connections"
  description    = "lastmile: DevOps connections in its compartment (they read the GitHub token)"
  matching_rule  = "ALL {resource.type = 'devopsconnection', resource.compartment.id = '${local.compartment_id}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_dynamic_group" "nodes" {
  provider       = oci.home
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-oke-nodes"
  description    = "lastmile: the OKE worker nodes (the only instances in its compartment)"
  matching_rule  = "ALL {instance.compartment.id = '${local.compartment_id}'}"
  freeform_tags  = local.tags
}

resource "oci_identity_group" "ci" {
  provider       = oci.home
  compartment_id = var.tenancy_ocid
  name           = "${var.name_prefix}-ci"
  description    = "lastmile: the user the harness runs as (CI, laptops)"
  freeform_tags  = local.tags
}

resource "oci_identity_user_group_membership" "ci" {
  count    = var.ci_user_ocid == "" ? 0 : 1
  provider = oci.home
  group_id = oci_identity_group.ci.id
  user_id  = var.ci_user_ocid
}

# The services that act for the resources: Object Storage and OKE encrypt with the vault's key; Data Science
# puts job runs' VNICs in the jobs subnet.
resource "oci_identity_policy" "services" {
  provider       = oci.home
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-services"
  description    = "lastmile: what OCI services do on its behalf"
  freeform_tags  = local.tags
  statements = [
    "Allow service objectstorage-${var.region} to use keys in compartment id ${local.compartment_id} where target.key.id = '${oci_kms_key.this.id}'",
    "Allow service oke to use keys in compartment id ${local.compartment_id} where target.key.id = '${oci_kms_key.this.id}'",
    "Allow service datascience to use virtual-network-family in compartment id ${local.compartment_id}",
  ]
}

# Training job runs: pull the training image, read the datasets, write (never delete) MLflow's artifacts,
# write their logs, read the MLflow password.
resource "oci_identity_policy" "datascience" {
  provider       = oci.home
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-datascience-jobruns"
  description    = "lastmile: Data Science job runs"
  freeform_tags  = local.tags
  statements = [
    "Allow dynamic-group id ${oci_identity_dynamic_group.jobruns.id} to read repos in compartment id ${local.compartment_id}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.jobruns.id} to read objects in compartment id ${local.compartment_id} where target.bucket.name = '${var.buckets.data}'",
    "Allow dynamic-group id ${oci_identity_dynamic_group.jobruns.id} to manage objects in compartment id ${local.compartment_id} where all {target.bucket.name = '${var.buckets.artifacts}', any {request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT', request.permission = 'OBJECT_READ'}}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.jobruns.id} to use log-content in compartment id ${local.compartment_id}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.jobruns.id} to read secret-bundles in compartment id ${local.compartment_id} where target.secret.name = 'mlflow-password'",
  ]
}

# Builds: push to the two existing repositories, read the tokens they log in with, notify the project's topic.
resource "oci_identity_policy" "devops" {
  provider       = oci.home
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-devops"
  description    = "lastmile: DevOps build runs and the GitHub connection"
  freeform_tags  = local.tags
  statements = [
    "Allow dynamic-group id ${oci_identity_dynamic_group.builds.id} to use repos in compartment id ${local.compartment_id}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.builds.id} to use ons-topics in compartment id ${local.compartment_id}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.builds.id} to read secret-bundles in compartment id ${local.compartment_id} where any {target.secret.name = 'ocir-auth-token', target.secret.name = 'github-access-token'}",
    "Allow dynamic-group id ${oci_identity_dynamic_group.connections.id} to read secret-bundles in compartment id ${local.compartment_id} where target.secret.name = 'github-access-token'",
  ]
}

# OKE: the nodes pull images; the serving pods (workload identity: this cluster, this namespace, this service
# account, nothing else) read the model files, ship prediction samples (never delete), log, read the MLflow password.
resource "oci_identity_policy" "oke" {
  provider       = oci.home
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-oke"
  description    = "lastmile: OKE worker nodes and the serving workload"
  freeform_tags  = local.tags
  statements = [
    "Allow dynamic-group id ${oci_identity_dynamic_group.nodes.id} to read repos in compartment id ${local.compartment_id}",
    "Allow any-user to read objects in compartment id ${local.compartment_id} where all {request.principal.type = 'workload', request.principal.cluster_id = '${oci_containerengine_cluster.this.id}', request.principal.namespace = '${var.kubernetes_namespace}', request.principal.service_account = '${var.serving_service_account}', target.bucket.name = '${var.buckets.artifacts}'}",
    "Allow any-user to manage objects in compartment id ${local.compartment_id} where all {request.principal.type = 'workload', request.principal.cluster_id = '${oci_containerengine_cluster.this.id}', request.principal.namespace = '${var.kubernetes_namespace}', request.principal.service_account = '${var.serving_service_account}', target.bucket.name = '${var.buckets.predictions}', any {request.permission = 'OBJECT_CREATE', request.permission = 'OBJECT_INSPECT'}}",
    "Allow any-user to use log-content in compartment id ${local.compartment_id} where all {request.principal.type = 'workload', request.principal.cluster_id = '${oci_containerengine_cluster.this.id}', request.principal.namespace = '${var.kubernetes_namespace}', request.principal.service_account = '${var.serving_service_account}'}",
    "Allow any-user to read secret-bundles in compartment id ${local.compartment_id} where all {request.principal.type = 'workload', request.principal.cluster_id = '${oci_containerengine_cluster.this.id}', request.principal.namespace = '${var.kubernetes_namespace}', request.principal.service_account = '${var.serving_service_account}', target.secret.name = 'mlflow-password'}",
  ]
}

# The user lastmile runs as: seed and read the buckets, push and pull images, read the vault's secrets, send and
# search logs, run training jobs and builds, get a kubeconfig (what it may do inside the cluster is Kubernetes
# RBAC's, bound to this user's OCID).
resource "oci_identity_policy" "ci" {
  provider       = oci.home
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-ci"
  description    = "lastmile: the user the harness runs as"
  freeform_tags  = local.tags
  statements = [
    "Allow group id ${oci_identity_group.ci.id} to read buckets in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to manage objects in compartment id ${local.compartment_id} where any {target.bucket.name = '${var.buckets.data}', target.bucket.name = '${var.buckets.artifacts}', target.bucket.name = '${var.buckets.predictions}'}",
    "Allow group id ${oci_identity_group.ci.id} to use repos in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to read secrets in compartment id ${local.compartment_id} where target.vault.id = '${oci_kms_vault.this.id}'",
    "Allow group id ${oci_identity_group.ci.id} to read secret-bundles in compartment id ${local.compartment_id} where target.vault.id = '${oci_kms_vault.this.id}'",
    "Allow group id ${oci_identity_group.ci.id} to use log-groups in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to use log-content in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to use data-science-projects in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to manage data-science-jobs in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to manage data-science-job-runs in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to use virtual-network-family in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to use devops-family in compartment id ${local.compartment_id}",
    "Allow group id ${oci_identity_group.ci.id} to use clusters in compartment id ${local.compartment_id}",
  ]
}
