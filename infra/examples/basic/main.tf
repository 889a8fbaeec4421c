# The original promise: one metrics server and one agent in the same Availability Zone.
#   terraform apply -var 'allowed_cidrs=["203.0.113.7/32"]' -var git_url=https://...
#   curl "$(terraform output -raw metrics_url)"

provider "aws" {
  region = var.region
}

module "latency_pair" {
  source = "../.."

  name            = "latency-pair"
  allowed_cidrs   = var.allowed_cidrs
  git_url         = var.git_url
  git_ref         = var.git_ref
  container_image = var.container_image

  tags = { Example = "basic" }
}
