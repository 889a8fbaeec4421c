# Test-only root: renders the six user_data variants (agent/server x package/source/container) through
# the same module the instance modules use, so scripts/check.sh can run shellcheck on them.
# No providers and no resources: `terraform apply` only evaluates outputs, fully offline.

terraform {
  required_version = ">= 1.9.0"
}

locals {
  ecr_image = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/latency-pair:1.2.3"
  git_url   = "https://github.com/example/latency-pair.git"
  git_ref   = "v1.2.3"
  image     = "ghcr.io/example/latency-pair:1.2.3"
  package   = { bucket = "latency-pair-artifacts-0123456789", manifest_key = "manifest" }
  targets = [
    { name = "same-az", host = "10.42.0.10" },
    { name = "cross-az", host = "10.42.1.10", port = 50051 },
  ]
}

# The package variants are what tests/package/boot_test.sh boots for real (agent on 10.42.0.10,
# mTLS between the two, TLS and a token on the server's surfaces).
module "agent_package" {
  source = "../../modules/_user_data"

  role             = "agent"
  package          = local.package
  status_parameter = "/latency-pair/status/agent-same-az"
  secrets = {
    cert      = "/latency-pair/tls/agent-cert"
    key       = "/latency-pair/tls/agent-key"
    client_ca = "/latency-pair/tls/ca"
  }
  install_ssm_agent = false
}

module "server_package" {
  source = "../../modules/_user_data"

  role = "server"
  secrets = {
    ca          = "/latency-pair/tls/ca"
    cert        = "/latency-pair/tls/server-cert"
    key         = "/latency-pair/tls/server-key"
    client_cert = "/latency-pair/tls/probe-cert"
    client_key  = "/latency-pair/tls/probe-key"
    token       = "/latency-pair/token"
  }
  package           = merge(local.package, { config_key = "config/server.textproto" })
  status_parameter  = "/latency-pair/status/server"
  targets           = local.targets
  probe_interval    = "500ms"
  install_ssm_agent = false
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
  container_image   = local.ecr_image # the ECR login path
  targets           = local.targets
  install_ssm_agent = false
}

output "agent_package" {
  description = "user_data of an agent installed from the .deb in S3."
  value       = module.agent_package.rendered
}

output "server_package" {
  description = "user_data of a metrics server installed from the .deb in S3."
  value       = module.server_package.rendered
}

output "server_package_config" {
  description = "The server config the package variant reads (uploaded to S3 by the root module)."
  value       = module.server_package.server_config
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
  description = "user_data of a metrics server run from a container image in ECR (docker logs in first)."
  value       = module.server_container.rendered
}
