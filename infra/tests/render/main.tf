# Test-only root: renders the nine user_data variants (agent/server/member x package/source/container) and
# the Prometheus host's (plain, and HTTPS with a token) through the same modules the instance
# modules use, so scripts/check.sh can run shellcheck and promtool on them.
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
  # A mesh member's targets: the other members, by name.
  members = [
    { name = "us-east-1b", host = "10.42.1.10" },
    { name = "us-east-1c", host = "10.42.2.10" },
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

module "prometheus" {
  source = "../../modules/_prometheus_user_data"

  region           = "eu-west-1"
  ec2_sd_filters   = { "tag:Role" = ["metrics-server"], "tag:LatencyPair" = ["latency-pair"] }
  scrape_port      = 5000
  scrape_interval  = "15s"
  retention        = "15d"
  rule_files       = { for file in fileset("${path.module}/../../prometheus", "*.rules.yml") : file => file("${path.module}/../../prometheus/${file}") }
  status_parameter = "/latency-pair/status/prometheus"
}

module "prometheus_tls" {
  source = "../../modules/_prometheus_user_data"

  region               = "eu-west-1"
  ec2_sd_filters       = { "tag:Role" = ["metrics-server"] }
  scrape_port          = 5000
  scrape_interval      = "30s"
  retention            = "30d"
  tls_ca_parameter     = "/latency-pair/tls/ca"
  auth_token_parameter = "/latency-pair/token"
  status_parameter     = "/latency-pair/status/prometheus"
  install_ssm_agent    = false
}

output "prometheus" {
  description = "user_data of the Prometheus host (plain HTTP scrapes, the repository's rules)."
  value       = module.prometheus.rendered
}

output "prometheus_tls" {
  description = "user_data of the Prometheus host scraping over HTTPS with a token."
  value       = module.prometheus_tls.rendered
}

output "prometheus_config" {
  description = "prometheus.yml of the plain variant (promtool checks it)."
  value       = module.prometheus.prometheus_config
}

output "prometheus_tls_config" {
  description = "prometheus.yml of the HTTPS variant (promtool checks it)."
  value       = module.prometheus_tls.prometheus_config
}

# A mesh member runs both programs; its targets are the other members (modules/mesh).
module "member_package" {
  source = "../../modules/_user_data"

  role             = "member"
  package          = merge(local.package, { config_key = "config/member-us-east-1a.textproto" })
  status_parameter = "/latency-mesh/status/member-us-east-1a"
  vantage_point    = "us-east-1a"
  targets          = local.members
  secrets = {
    ca          = "/latency-mesh/tls/ca"
    cert        = "/latency-mesh/tls/member-cert"
    key         = "/latency-mesh/tls/member-key"
    client_cert = "/latency-mesh/tls/probe-cert"
    client_key  = "/latency-mesh/tls/probe-key"
    client_ca   = "/latency-mesh/tls/ca"
    token       = "/latency-mesh/token"
  }
  install_ssm_agent = false
}

module "member_source" {
  source = "../../modules/_user_data"

  role          = "member"
  git_url       = local.git_url
  git_ref       = local.git_ref
  vantage_point = "us-east-1a"
  targets       = local.members
}

module "member_container" {
  source = "../../modules/_user_data"

  role            = "member"
  container_image = local.image
  vantage_point   = "us-east-1a"
  targets         = local.members
  log_format      = "json"
}

output "member_package" {
  description = "user_data of a mesh member (agent and server) installed from the .deb in S3."
  value       = module.member_package.rendered
}

output "member_package_config" {
  description = "The server config of the member package variant (its source, the other members)."
  value       = module.member_package.server_config
}

output "member_source" {
  description = "user_data of a mesh member built from source."
  value       = module.member_source.rendered
}

output "member_container" {
  description = "user_data of a mesh member run from a container image."
  value       = module.member_container.rendered
}
