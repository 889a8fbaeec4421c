# The original promise: one metrics server and one agent in the same Availability Zone.
#   terraform apply -var 'allowed_cidrs=["203.0.113.7/32"]' -var package_path=../../../build/latency-pair_0.1.0_amd64.deb
#   curl "$(terraform output -raw metrics_url)"

provider "aws" {
  region = var.region
}

module "latency_pair" {
  source = "../.."

  name            = "latency-pair"
  allowed_cidrs   = var.allowed_cidrs
  package_path    = var.package_path
  git_url         = var.git_url
  git_ref         = var.git_ref
  container_image = var.container_image

  tags = { Example = "basic" }
}
