# The buckets lastmile uses: datasets (stored under their sha256), MLflow's artifacts, the replicas' prediction
# samples. Private, versioned (an overwritten or deleted model file can be recovered), encrypted with the vault's
# key, and emitting object events for audit.

resource "oci_objectstorage_bucket" "this" {
  for_each = var.buckets

  compartment_id        = local.compartment_id
  namespace             = local.namespace
  name                  = each.value
  access_type           = "NoPublicAccess"
  versioning            = "Enabled"
  storage_tier          = "Standard"
  object_events_enabled = true
  kms_key_id            = oci_kms_key.this.id
  freeform_tags         = merge(local.tags, { purpose = each.key })

  depends_on = [oci_identity_policy.services]
}
