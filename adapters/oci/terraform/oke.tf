# The OKE cluster the oke deployer rolls the serving image out to: its API endpoint in its own subnet (public IP
# only when kube_api_public, reachable only from kube_api_allowed_cidrs), load balancers in the LB subnet, workers
# in the private nodes subnet, Kubernetes secrets encrypted with the vault's key.

data "oci_identity_availability_domains" "this" {
  compartment_id = var.tenancy_ocid
}

resource "oci_containerengine_cluster" "this" {
  #checkov:skip=CKV2_OCI_6:PodSecurityPolicy was removed in Kubernetes 1.25 and OKE refuses it on the versions it offers now; pod security is Pod Security Admission's, set on the deployer's namespace
  compartment_id     = local.compartment_id
  name               = "${var.name_prefix}-oke"
  kubernetes_version = var.kubernetes_version
  vcn_id             = oci_core_vcn.this.id
  type               = "ENHANCED_CLUSTER" # workload identity, which the serving pods' policies rely on, exists only there
  kms_key_id         = oci_kms_key.this.id
  freeform_tags      = local.tags

  cluster_pod_network_options {
    cni_type = "FLANNEL_OVERLAY"
  }

  endpoint_config {
    subnet_id            = oci_core_subnet.oke_api.id
    is_public_ip_enabled = var.kube_api_public
    nsg_ids              = [oci_core_network_security_group.oke_api.id]
  }

  options {
    service_lb_subnet_ids = [oci_core_subnet.oke_lb.id]

    kubernetes_network_config {
      pods_cidr     = "10.244.0.0/16"
      services_cidr = "10.96.0.0/16"
    }
  }

  depends_on = [oci_identity_policy.services]
}

resource "oci_containerengine_node_pool" "this" {
  cluster_id         = oci_containerengine_cluster.this.id
  compartment_id     = local.compartment_id
  name               = "${var.name_prefix}-workers"
  kubernetes_version = var.kubernetes_version
  node_shape         = var.node_shape
  freeform_tags      = local.tags

  node_shape_config {
    ocpus         = var.node_ocpus
    memory_in_gbs = var.node_memory_gbs
  }

  node_source_details {
    source_type             = "IMAGE"
    image_id                = var.node_image_id
    boot_volume_size_in_gbs = 50
  }

  node_config_details {
    size                                = var.node_count
    is_pv_encryption_in_transit_enabled = true
    freeform_tags                       = local.tags

    dynamic "placement_configs" {
      for_each = data.oci_identity_availability_domains.this.availability_domains
      content {
        availability_domain = placement_configs.value.name
        subnet_id           = oci_core_subnet.oke_nodes.id
      }
    }
  }

  initial_node_labels {
    key   = "lastmile.role"
    value = "serving"
  }
}
