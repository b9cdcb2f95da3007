# The oci profile's resources. Terraform and the provider are pinned; IAM lives in the home region, so the
# identity resources go through the `oci.home` alias.
terraform {
  required_version = ">= 1.5.0, < 2.0.0"

  required_providers {
    oci = {
      source  = "oracle/oci"
      version = "~> 7.0"
    }
  }
}

provider "oci" {
  region              = var.region
  config_file_profile = var.oci_config_profile
}

provider "oci" {
  alias               = "home"
  region              = coalesce(var.home_region, var.region)
  config_file_profile = var.oci_config_profile
}

locals {
  compartment_id = oci_identity_compartment.lastmile.id
  namespace      = data.oci_objectstorage_namespace.this.namespace
  tags           = merge({ project = var.name_prefix }, var.freeform_tags)
}

data "oci_objectstorage_namespace" "this" {
  compartment_id = var.tenancy_ocid
}
