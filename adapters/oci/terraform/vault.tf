# A vault, its master encryption key, and the secrets the oci profile refers to (vault:OCID). The values come from
# sensitive variables; Terraform's state holds them, so keep the state in an encrypted, access-controlled backend.

resource "oci_kms_vault" "this" {
  compartment_id = local.compartment_id
  display_name   = "${var.name_prefix}-vault"
  vault_type     = "DEFAULT"
  freeform_tags  = local.tags
}

resource "oci_kms_key" "this" {
  compartment_id      = local.compartment_id
  display_name        = "${var.name_prefix}-key"
  management_endpoint = oci_kms_vault.this.management_endpoint
  protection_mode     = "HSM"
  freeform_tags       = local.tags

  key_shape {
    algorithm = "AES"
    length    = 32
  }
}

locals {
  secret_names = ["ocir-auth-token", "s3-compat-access-key-id", "s3-compat-secret-key", "mlflow-password", "github-access-token"]

  # name in the vault => value. The names are what `secret:NAME` looks up, so they match oci-local's where they can.
  secrets = {
    "ocir-auth-token"         = var.ocir_auth_token
    "s3-compat-access-key-id" = var.s3_access_key_id
    "s3-compat-secret-key"    = var.s3_secret_key
    "mlflow-password"         = var.mlflow_password
    "github-access-token"     = var.github_access_token
  }
}

resource "oci_vault_secret" "this" {
  for_each = toset(local.secret_names)

  compartment_id = local.compartment_id
  vault_id       = oci_kms_vault.this.id
  key_id         = oci_kms_key.this.id
  secret_name    = each.key
  description    = "lastmile: ${each.key}"
  freeform_tags  = local.tags

  secret_content {
    content_type = "BASE64"
    content      = base64encode(local.secrets[each.key])
  }
}
