# Test-only root: renders the four user_data variants (agent/server x source/container) through
# the same module the instance modules use, so scripts/check.sh can run shellcheck on them.
# No providers and no resources: `terraform apply` only evaluates outputs, fully offline.

terraform {
  required_version = ">= 1.9.0"
}

locals {
  git_url = "https://github.com/example/latency-pair.git"
  git_ref = "v1.2.3"
  image   = "ghcr.io/example/latency-pair:1.2.3"
  targets = [
    { name = "same-az", host = "10.42.0.10" },
    { name = "cross-az", host = "10.42.1.10", port = 50051 },
  ]
}

module "agent_source" {
  source = "../../modules/_user_data"

  role    = "agent"
  git_url = local.git_url
  git_ref = local.git_ref
}

module "agent_container" {
  source = "../../modules/_user_data"

  role            = "agent"
  container_image = local.image
  log_format      = "json"
}

module "server_source" {
  source = "../../modules/_user_data"

  role    = "server"
  git_url = local.git_url
  git_ref = local.git_ref
  targets = local.targets
}

module "server_container" {
  source = "../../modules/_user_data"

  role              = "server"
  container_image   = local.image
  targets           = local.targets
  install_ssm_agent = false
}

output "agent_source" {
  description = "user_data of an agent built from source."
  value       = module.agent_source.rendered
}

output "agent_container" {
  description = "user_data of an agent run from a container image."
  value       = module.agent_container.rendered
}

output "server_source" {
  description = "user_data of a metrics server built from source."
  value       = module.server_source.rendered
}

output "server_container" {
  description = "user_data of a metrics server run from a container image."
  value       = module.server_container.rendered
}
