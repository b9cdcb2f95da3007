# The two images' repositories in OCIR, private. Their paths are <region-key>.ocir.io/<namespace>/<prefix>/training
# and .../serving, the ocir flavor's repository_prefix.

locals {
  ocir_repository_prefix = var.name_prefix
}

resource "oci_artifacts_container_repository" "this" {
  for_each = toset(["training", "serving"])

  compartment_id = local.compartment_id
  display_name   = "${local.ocir_repository_prefix}/${each.key}"
  is_public      = false
  is_immutable   = false
  freeform_tags  = local.tags

  readme {
    content = "lastmile's ${each.key} image, pushed by the DevOps build pipeline and referred to by digest."
    format  = "TEXT_PLAIN"
  }
}
