# Same-AZ and cross-AZ latency side by side: one metrics server probes an agent in its own
# Availability Zone and one in another zone.

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

  name            = "latency-pair-xaz"
  allowed_cidrs   = var.allowed_cidrs
  package_path    = var.package_path
  git_url         = var.git_url
  git_ref         = var.git_ref
  container_image = var.container_image

  server_availability_zone = local.availability_zones[0]
  agents = {
    same-az  = {}
    cross-az = { availability_zone = local.availability_zones[1] }
  }

  tags = { Example = "cross_az" }
}
