# A latency mesh: N members across Availability Zones, each running latency-agent and
# latency-server, each server probing every other member with source = its name. By default
# three members, one per zone in the region's first three zones, each named after its zone.

provider "aws" {
  region = var.region
}

data "aws_availability_zones" "available" {
  count = var.members == null ? 1 : 0

  state = "available"

  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.member_count
      error_message = "The region has fewer Availability Zones (that need no opt-in) than member_count: lower it, or list members with their zones."
    }
  }
}

locals {
  members = var.members != null ? var.members : {
    for az in slice(data.aws_availability_zones.available[0].names, 0, var.member_count) : az => { availability_zone = az }
  }
}

module "mesh" {
  source = "../../modules/mesh"

  name            = "latency-mesh"
  members         = local.members
  allowed_cidrs   = var.allowed_cidrs
  package_path    = var.package_path
  git_url         = var.git_url
  git_ref         = var.git_ref
  container_image = var.container_image
  prometheus_host = var.prometheus_host

  tags = { Example = "mesh" }
}
