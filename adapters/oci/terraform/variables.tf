# Inputs. Secret values are sensitive and have no default: pass them with TF_VAR_... or a tfvars file that is
# never committed (terraform.tfvars.example lists everything else).

variable "tenancy_ocid" {
  type        = string
  description = "The tenancy's OCID (dynamic groups and the Object Storage namespace live at its root)."
}

variable "region" {
  type        = string
  description = "The region the resources go to, e.g. eu-frankfurt-1."
}

variable "home_region" {
  type        = string
  default     = ""
  description = "The tenancy's home region, where IAM changes are made; empty = var.region."
}

variable "oci_config_profile" {
  type        = string
  default     = "DEFAULT"
  description = "The profile of ~/.oci/config the provider signs with."
}

variable "parent_compartment_id" {
  type        = string
  description = "Where the lastmile compartment is created (the tenancy OCID for a top-level one)."
}

variable "name_prefix" {
  type        = string
  default     = "lastmile"
  description = "Prefix of every name; also the compartment's name."

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix: 2-21 lower-case letters, digits and hyphens, starting with a letter."
  }
}

variable "freeform_tags" {
  type        = map(string)
  default     = {}
  description = "Extra freeform tags on every resource that takes them."
}

variable "buckets" {
  type = object({
    data        = string
    artifacts   = string
    predictions = string
  })
  default = {
    data        = "lastmile-data"
    artifacts   = "lastmile-mlflow"
    predictions = "lastmile-predictions"
  }
  description = "Bucket names: the datasets, MLflow's artifacts, the replicas' prediction samples (lastmile.yaml's buckets)."
}

# --- network ---

variable "vcn_cidr" {
  type    = string
  default = "10.20.0.0/16"

  validation {
    condition     = can(cidrnetmask(var.vcn_cidr)) && var.vcn_cidr != "0.0.0.0/0"
    error_message = "vcn_cidr: a CIDR block of private addresses, such as 10.20.0.0/16."
  }
}

variable "subnet_cidrs" {
  type = object({
    oke_api   = string
    oke_nodes = string
    oke_lb    = string
    jobs      = string
  })
  default = {
    oke_api   = "10.20.0.0/28"
    oke_nodes = "10.20.10.0/24"
    oke_lb    = "10.20.20.0/24"
    jobs      = "10.20.30.0/24"
  }
  description = "One subnet per concern: the Kubernetes API endpoint, the worker nodes, the load balancers, Data Science job runs."

  validation {
    condition     = alltrue([for cidr in values(var.subnet_cidrs) : can(cidrnetmask(cidr)) && cidr != "0.0.0.0/0"])
    error_message = "subnet_cidrs: CIDR blocks inside vcn_cidr."
  }
}

variable "kube_api_public" {
  type        = bool
  default     = true
  description = "Give the Kubernetes API endpoint a public IP (reachable only from kube_api_allowed_cidrs). false = private, reach it through a bastion or VPN."
}

variable "kube_api_allowed_cidrs" {
  type        = list(string)
  description = "Who may reach the Kubernetes API on 6443: the CI runners' and operators' egress CIDRs. Never 0.0.0.0/0."

  validation {
    condition     = length(var.kube_api_allowed_cidrs) > 0 && !contains(var.kube_api_allowed_cidrs, "0.0.0.0/0")
    error_message = "kube_api_allowed_cidrs: name the networks that run kubectl; 0.0.0.0/0 is refused."
  }
}

variable "lb_ingress_cidrs" {
  type        = list(string)
  default     = ["0.0.0.0/0"]
  description = "Who may reach the prediction endpoint's load balancer on 80/443. The endpoint serves clients on the internet by default; narrow it for an internal one."
}

# --- OKE ---

variable "kubernetes_version" {
  type        = string
  description = "A Kubernetes version OKE offers in the region now, e.g. v1.33.1 (oci ce cluster-options get --cluster-option-id all)."
}

variable "node_image_id" {
  type        = string
  description = "An OKE worker image for kubernetes_version and node_shape (oci ce node-pool-options get --node-pool-option-id all)."
}

variable "node_shape" {
  type    = string
  default = "VM.Standard.E4.Flex"
}

variable "node_ocpus" {
  type    = number
  default = 1
}

variable "node_memory_gbs" {
  type    = number
  default = 16
}

variable "node_count" {
  type    = number
  default = 2
}

variable "kubernetes_namespace" {
  type        = string
  default     = "lastmile"
  description = "The namespace the OKE deployer deploys to; the workload-identity policies name it."
}

variable "serving_service_account" {
  type        = string
  default     = "lastmile-serving"
  description = "The Kubernetes service account of the serving pods; the workload-identity policies name it."
}

# --- DevOps ---

variable "github_repository_url" {
  type        = string
  description = "The HTTPS URL of the GitHub repository holding lastmile (and its build_spec.yaml)."
}

variable "github_branch" {
  type    = string
  default = "main"
}

variable "build_spec_file" {
  type        = string
  default     = "build_spec.yaml"
  description = "The build spec the build stage runs, relative to the repository root."
}

variable "trigger_paths" {
  type        = list(string)
  default     = ["training/**", "serving/**"]
  description = "A push touching one of these paths starts a build (lastmile.yaml's source_trigger paths)."
}

variable "trigger_exclude_paths" {
  type    = list(string)
  default = ["**/*.md"]
}

# --- people and tools outside the tenancy ---

variable "ci_user_ocid" {
  type        = string
  default     = ""
  description = "The IAM user lastmile runs as from CI or a laptop (owner of the OCIR auth token and the customer secret key); added to the CI group when set."
}

variable "ci_username" {
  type        = string
  default     = "lastmile-ci"
  description = "That user's name: OCIR logins are <namespace>/<username> (identity-domain users: <namespace>/<domain>/<username>)."
}

variable "mlflow_tracking_uri" {
  type        = string
  default     = "https://mlflow.example.internal"
  description = "Where MLflow answers (it runs on OKE or a VM, outside this configuration); written to the profile as is."
}

variable "log_retention_days" {
  type    = number
  default = 30
}

# --- secrets: values only, never defaults; they become Vault secrets ---

variable "ocir_auth_token" {
  type        = string
  sensitive   = true
  description = "An auth token of the CI user, for OCIR logins."
}

variable "s3_access_key_id" {
  type        = string
  sensitive   = true
  description = "The CI user's customer secret key: its access key id (the S3 compatibility API)."
}

variable "s3_secret_key" {
  type        = string
  sensitive   = true
  description = "The CI user's customer secret key: its secret."
}

variable "mlflow_password" {
  type        = string
  sensitive   = true
  description = "The password of MLflow's basic-auth user."
}

variable "github_access_token" {
  type        = string
  sensitive   = true
  description = "A GitHub personal access token (repo read) for the DevOps connection."
}
