# One log group; custom logs for the pipeline's events (the oci-logging log sink), the training job runs and the
# serving replicas; the DevOps project's build logs as a service log.

resource "oci_logging_log_group" "this" {
  compartment_id = local.compartment_id
  display_name   = "${var.name_prefix}-logs"
  description    = "lastmile: pipeline events, job runs, builds, serving"
  freeform_tags  = local.tags
}

resource "oci_logging_log" "custom" {
  for_each = toset(["events", "jobs", "serving"])

  display_name       = "${var.name_prefix}-${each.key}"
  log_group_id       = oci_logging_log_group.this.id
  log_type           = "CUSTOM"
  is_enabled         = true
  retention_duration = var.log_retention_days
  freeform_tags      = local.tags
}

resource "oci_logging_log" "builds" {
  display_name       = "${var.name_prefix}-builds"
  log_group_id       = oci_logging_log_group.this.id
  log_type           = "SERVICE"
  is_enabled         = true
  retention_duration = var.log_retention_days
  freeform_tags      = local.tags

  configuration {
    compartment_id = local.compartment_id
    source {
      category    = "all"
      resource    = oci_devops_project.this.id
      service     = "devops"
      source_type = "OCISERVICE"
    }
  }
}
