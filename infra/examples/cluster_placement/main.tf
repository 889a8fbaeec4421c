# Three placements probed by one metrics server: an agent in a cluster placement group with
# the server, a plain same-AZ agent and a cross-AZ agent. Cluster placement groups need
# non-burstable instance types, so every instance is c6i.large (see README for the cost).

provider "aws" {
  region = var.region
}

data "aws_availability_zones" "available" {
  count = var.availability_zones == null ? 1 : 0

  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

locals {
  availability_zones = var.availability_zones != null ? var.availability_zones : slice(data.aws_availability_zones.available[0].names, 0, 2)
}

module "latency_pair" {
  source = "../.."

  name            = "latency-pair-cpg"
  allowed_cidrs   = var.allowed_cidrs
  package_path    = var.package_path
  git_url         = var.git_url
  git_ref         = var.git_ref
  container_image = var.container_image

  server_availability_zone = local.availability_zones[0]
  server_instance_type     = var.instance_type
  agent_instance_type      = var.instance_type
  agents = {
    cluster  = { placement_group = true }
    same-az  = {}
    cross-az = { availability_zone = local.availability_zones[1] }
  }

  tags = { Example = "cluster_placement" }
}
