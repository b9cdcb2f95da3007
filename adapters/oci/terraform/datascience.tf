# The Data Science project the training job runs in. Jobs and job runs are made per run by the datascience
# flavor (bring-your-own-container, the training image by digest), in the jobs subnet, logging to the jobs log.

resource "oci_datascience_project" "this" {
  compartment_id = local.compartment_id
  display_name   = "${var.name_prefix}-training"
  description    = "lastmile: training job runs"
  freeform_tags  = local.tags
}
