# One VCN, a subnet per concern: the Kubernetes API endpoint, the worker nodes, the load balancers and Data
# Science job runs. Only the load balancer subnet takes traffic from anywhere (the prediction endpoint, 80/443);
# private subnets leave through a NAT gateway, and reach Oracle's services (Object Storage, OCIR, Logging,
# Vault) through the service gateway. Rules follow OKE's documented flannel-overlay set, narrowed to the VCN.

data "oci_core_services" "all" {
  filter {
    name   = "name"
    values = ["All .* Services In Oracle Services Network"]
    regex  = true
  }
}

locals {
  osn_cidr     = data.oci_core_services.all.services[0].cidr_block
  tcp          = "6"
  icmp         = "1"
  all          = "all"
  lb_ports     = [80, 443]
  nodeport_min = 30000
  nodeport_max = 32767
}

resource "oci_core_vcn" "this" {
  compartment_id = local.compartment_id
  cidr_blocks    = [var.vcn_cidr]
  display_name   = "${var.name_prefix}-vcn"
  dns_label      = substr(replace(var.name_prefix, "-", ""), 0, 15)
  freeform_tags  = local.tags
}

resource "oci_core_internet_gateway" "this" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-igw"
  enabled        = true
  freeform_tags  = local.tags
}

resource "oci_core_nat_gateway" "this" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-nat"
  freeform_tags  = local.tags
}

resource "oci_core_service_gateway" "this" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-sgw"
  freeform_tags  = local.tags

  services {
    service_id = data.oci_core_services.all.services[0].id
  }
}

resource "oci_core_route_table" "public" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-public"
  freeform_tags  = local.tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_internet_gateway.this.id
  }
}

resource "oci_core_route_table" "private" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-private"
  freeform_tags  = local.tags

  route_rules {
    destination       = "0.0.0.0/0"
    destination_type  = "CIDR_BLOCK"
    network_entity_id = oci_core_nat_gateway.this.id
  }

  route_rules {
    destination       = local.osn_cidr
    destination_type  = "SERVICE_CIDR_BLOCK"
    network_entity_id = oci_core_service_gateway.this.id
  }
}

# --- the Kubernetes API endpoint: kubectl from the allowed CIDRs, the nodes' kubelets and OKE's control plane.
# Its rules are a network security group on the endpoint itself; its subnet's list only lets path discovery in.

resource "oci_core_security_list" "oke_api" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-oke-api"
  freeform_tags  = local.tags

  ingress_security_rules {
    protocol    = local.icmp
    source      = var.vcn_cidr
    description = "path MTU discovery"
    icmp_options {
      type = 3
      code = 4
    }
  }
}

resource "oci_core_network_security_group" "oke_api" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-oke-api"
  freeform_tags  = local.tags
}

resource "oci_core_network_security_group_security_rule" "oke_api_kubectl" {
  #checkov:skip=CKV_OCI_21:stateful on purpose; a stateless ingress rule would need a mirror egress rule to every client for the answers, and the API is TCP
  for_each = toset(var.kube_api_allowed_cidrs)

  network_security_group_id = oci_core_network_security_group.oke_api.id
  direction                 = "INGRESS"
  protocol                  = local.tcp
  source                    = each.value
  source_type               = "CIDR_BLOCK"
  description               = "kubectl and the OKE deployer"
  tcp_options {
    destination_port_range {
      min = 6443
      max = 6443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "oke_api_from_nodes" {
  #checkov:skip=CKV_OCI_21:stateful on purpose; a stateless ingress rule would need a mirror egress rule to every client for the answers, and the API is TCP
  for_each = toset(["6443", "12250"])

  network_security_group_id = oci_core_network_security_group.oke_api.id
  direction                 = "INGRESS"
  protocol                  = local.tcp
  source                    = var.subnet_cidrs.oke_nodes
  source_type               = "CIDR_BLOCK"
  description               = "worker nodes to the Kubernetes API and the control plane"
  tcp_options {
    destination_port_range {
      min = tonumber(each.value)
      max = tonumber(each.value)
    }
  }
}

resource "oci_core_network_security_group_security_rule" "oke_api_to_oke" {
  network_security_group_id = oci_core_network_security_group.oke_api.id
  direction                 = "EGRESS"
  protocol                  = local.tcp
  destination               = local.osn_cidr
  destination_type          = "SERVICE_CIDR_BLOCK"
  description               = "the control plane to OKE"
  tcp_options {
    destination_port_range {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_network_security_group_security_rule" "oke_api_to_nodes" {
  #checkov:skip=CKV2_OCI_2:an egress rule, to the nodes subnet only (OKE's documented all-TCP from the control plane to the kubelets); the check is about ingress from anywhere on 3389
  network_security_group_id = oci_core_network_security_group.oke_api.id
  direction                 = "EGRESS"
  protocol                  = local.tcp
  destination               = var.subnet_cidrs.oke_nodes
  destination_type          = "CIDR_BLOCK"
  description               = "the control plane to the kubelets"
}

resource "oci_core_network_security_group_security_rule" "oke_api_path_discovery" {
  #checkov:skip=CKV2_OCI_2:an ICMP type 3 code 4 egress rule to the nodes subnet; no port is open, 3389 or other
  network_security_group_id = oci_core_network_security_group.oke_api.id
  direction                 = "EGRESS"
  protocol                  = local.icmp
  destination               = var.subnet_cidrs.oke_nodes
  destination_type          = "CIDR_BLOCK"
  description               = "path MTU discovery"
  icmp_options {
    type = 3
    code = 4
  }
}

# --- worker nodes: pods talk among themselves; the control plane and the load balancers reach in ---

resource "oci_core_security_list" "oke_nodes" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-oke-nodes"
  freeform_tags  = local.tags

  ingress_security_rules {
    protocol    = local.all
    source      = var.subnet_cidrs.oke_nodes
    description = "pod to pod across nodes (flannel)"
  }

  ingress_security_rules {
    protocol    = local.tcp
    source      = var.subnet_cidrs.oke_api
    description = "the control plane to the kubelets"
  }

  ingress_security_rules {
    protocol    = local.tcp
    source      = var.subnet_cidrs.oke_lb
    description = "load balancers to the Service's node ports"
    tcp_options {
      min = local.nodeport_min
      max = local.nodeport_max
    }
  }

  ingress_security_rules {
    protocol    = local.tcp
    source      = var.subnet_cidrs.oke_lb
    description = "load balancers' health checks of kube-proxy"
    tcp_options {
      min = 10256
      max = 10256
    }
  }

  ingress_security_rules {
    protocol    = local.icmp
    source      = var.vcn_cidr
    description = "path MTU discovery"
    icmp_options {
      type = 3
      code = 4
    }
  }

  egress_security_rules {
    protocol    = local.all
    destination = var.subnet_cidrs.oke_nodes
    description = "pod to pod across nodes (flannel)"
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = var.subnet_cidrs.oke_api
    description = "kubelets to the Kubernetes API and the control plane"
    tcp_options {
      min = 6443
      max = 6443
    }
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = var.subnet_cidrs.oke_api
    description = "kubelets to the control plane"
    tcp_options {
      min = 12250
      max = 12250
    }
  }

  egress_security_rules {
    protocol         = local.tcp
    destination      = local.osn_cidr
    destination_type = "SERVICE_CIDR_BLOCK"
    description      = "OCIR, Object Storage, Logging, Vault through the service gateway"
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = "0.0.0.0/0"
    description = "HTTPS out through the NAT gateway (MLflow, image layers outside OCIR)"
    tcp_options {
      min = 443
      max = 443
    }
  }

  egress_security_rules {
    protocol    = local.icmp
    destination = var.vcn_cidr
    description = "path MTU discovery"
    icmp_options {
      type = 3
      code = 4
    }
  }
}

# --- load balancers: the prediction endpoint, the only subnet reachable from outside the VCN ---

resource "oci_core_security_list" "oke_lb" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-oke-lb"
  freeform_tags  = local.tags

  # The prediction endpoint's listener (HTTP and HTTPS) is public by design: its clients are on the internet.
  # lb_ingress_cidrs narrows it for an internal endpoint. Nothing else in the VCN takes 0.0.0.0/0 ingress.
  dynamic "ingress_security_rules" {
    for_each = setproduct(var.lb_ingress_cidrs, local.lb_ports)
    content {
      protocol    = local.tcp
      source      = ingress_security_rules.value[0]
      description = "the prediction endpoint's listener"
      tcp_options {
        min = ingress_security_rules.value[1]
        max = ingress_security_rules.value[1]
      }
    }
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = var.subnet_cidrs.oke_nodes
    description = "to the Service's node ports"
    tcp_options {
      min = local.nodeport_min
      max = local.nodeport_max
    }
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = var.subnet_cidrs.oke_nodes
    description = "health checks of kube-proxy"
    tcp_options {
      min = 10256
      max = 10256
    }
  }
}

# --- Data Science job runs: nothing comes in; they read data, push to MLflow and write logs ---

resource "oci_core_security_list" "jobs" {
  compartment_id = local.compartment_id
  vcn_id         = oci_core_vcn.this.id
  display_name   = "${var.name_prefix}-jobs"
  freeform_tags  = local.tags

  ingress_security_rules {
    protocol    = local.icmp
    source      = var.vcn_cidr
    description = "path MTU discovery"
    icmp_options {
      type = 3
      code = 4
    }
  }

  egress_security_rules {
    protocol         = local.tcp
    destination      = local.osn_cidr
    destination_type = "SERVICE_CIDR_BLOCK"
    description      = "Object Storage, OCIR, Logging, Vault through the service gateway"
    tcp_options {
      min = 443
      max = 443
    }
  }

  egress_security_rules {
    protocol    = local.tcp
    destination = "0.0.0.0/0"
    description = "HTTPS out through the NAT gateway (the MLflow tracking server)"
    tcp_options {
      min = 443
      max = 443
    }
  }
}

resource "oci_core_subnet" "oke_api" {
  compartment_id             = local.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.subnet_cidrs.oke_api
  display_name               = "${var.name_prefix}-oke-api"
  dns_label                  = "okeapi"
  prohibit_public_ip_on_vnic = !var.kube_api_public
  route_table_id             = var.kube_api_public ? oci_core_route_table.public.id : oci_core_route_table.private.id
  security_list_ids          = [oci_core_security_list.oke_api.id]
  freeform_tags              = local.tags
}

resource "oci_core_subnet" "oke_nodes" {
  compartment_id             = local.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.subnet_cidrs.oke_nodes
  display_name               = "${var.name_prefix}-oke-nodes"
  dns_label                  = "okenodes"
  prohibit_public_ip_on_vnic = true
  route_table_id             = oci_core_route_table.private.id
  security_list_ids          = [oci_core_security_list.oke_nodes.id]
  freeform_tags              = local.tags
}

resource "oci_core_subnet" "oke_lb" {
  compartment_id             = local.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.subnet_cidrs.oke_lb
  display_name               = "${var.name_prefix}-oke-lb"
  dns_label                  = "okelb"
  prohibit_public_ip_on_vnic = false
  route_table_id             = oci_core_route_table.public.id
  security_list_ids          = [oci_core_security_list.oke_lb.id]
  freeform_tags              = local.tags
}

resource "oci_core_subnet" "jobs" {
  compartment_id             = local.compartment_id
  vcn_id                     = oci_core_vcn.this.id
  cidr_block                 = var.subnet_cidrs.jobs
  display_name               = "${var.name_prefix}-jobs"
  dns_label                  = "jobs"
  prohibit_public_ip_on_vnic = true
  route_table_id             = oci_core_route_table.private.id
  security_list_ids          = [oci_core_security_list.jobs.id]
  freeform_tags              = local.tags
}

# Every VCN comes with a default security list that lets SSH in from anywhere; no subnet here uses it, and it is
# emptied so that a subnet added later by hand does not inherit that rule.
resource "oci_core_default_security_list" "this" {
  manage_default_resource_id = oci_core_vcn.this.default_security_list_id
  display_name               = "${var.name_prefix}-default-empty"
  freeform_tags              = local.tags
}
