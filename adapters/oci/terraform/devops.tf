# The build: a DevOps project (its notifications go to a topic), a GitHub connection whose token is a vault
# secret, a build pipeline whose build stage runs the repository's build_spec.yaml (building and pushing the
# training and serving images to OCIR), and a trigger on pushes to the branch that touch the images' paths.

resource "oci_ons_notification_topic" "devops" {
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-devops"
  description    = "lastmile: DevOps build notifications"
  freeform_tags  = local.tags
}

resource "oci_devops_project" "this" {
  compartment_id = local.compartment_id
  name           = "${var.name_prefix}-build"
  description    = "lastmile: image builds"
  freeform_tags  = local.tags

  notification_config {
    topic_id = oci_ons_notification_topic.devops.id
  }
}

resource "oci_devops_connection" "github" {
  project_id      = oci_devops_project.this.id
  connection_type = "GITHUB_ACCESS_TOKEN"
  access_token    = oci_vault_secret.this["github-access-token"].id
  display_name    = "${var.name_prefix}-github"
  freeform_tags   = local.tags

  depends_on = [oci_identity_policy.devops]
}

resource "oci_devops_build_pipeline" "this" {
  project_id    = oci_devops_project.this.id
  display_name  = "${var.name_prefix}-images"
  description   = "lastmile: builds the training and serving images and pushes them to OCIR"
  freeform_tags = local.tags

  build_pipeline_parameters {
    items {
      name          = "OCIR_REGISTRY"
      default_value = "${lower(data.oci_identity_regions.this.regions[0].key)}.ocir.io"
      description   = "the region's OCIR host"
    }
    items {
      name          = "OCIR_REPOSITORY_PREFIX"
      default_value = "${local.namespace}/${local.ocir_repository_prefix}"
      description   = "the images are <registry>/<prefix>/training and .../serving"
    }
  }
}

data "oci_identity_regions" "this" {
  filter {
    name   = "name"
    values = [var.region]
  }
}

resource "oci_devops_build_pipeline_stage" "build" {
  build_pipeline_id                  = oci_devops_build_pipeline.this.id
  build_pipeline_stage_type          = "BUILD"
  display_name                       = "build-images"
  description                        = "runs ${var.build_spec_file}"
  image                              = "OL7_X86_64_STANDARD_10"
  build_spec_file                    = var.build_spec_file
  primary_build_source               = "lastmile"
  stage_execution_timeout_in_seconds = 3600
  freeform_tags                      = local.tags

  build_pipeline_stage_predecessor_collection {
    items {
      id = oci_devops_build_pipeline.this.id
    }
  }

  build_source_collection {
    items {
      name            = "lastmile"
      connection_type = "GITHUB"
      connection_id   = oci_devops_connection.github.id
      repository_url  = var.github_repository_url
      branch          = var.github_branch
    }
  }
}

resource "oci_devops_trigger" "push" {
  project_id     = oci_devops_project.this.id
  trigger_source = "GITHUB"
  connection_id  = oci_devops_connection.github.id
  display_name   = "${var.name_prefix}-push"
  description    = "a push to ${var.github_branch} touching the images' paths builds them"
  freeform_tags  = local.tags

  actions {
    type              = "TRIGGER_BUILD_PIPELINE"
    build_pipeline_id = oci_devops_build_pipeline.this.id

    filter {
      trigger_source = "GITHUB"
      events         = ["PUSH"]

      include {
        head_ref = var.github_branch
        file_filter {
          file_paths = var.trigger_paths
        }
      }

      exclude {
        file_filter {
          file_paths = var.trigger_exclude_paths
        }
      }
    }
  }
}
