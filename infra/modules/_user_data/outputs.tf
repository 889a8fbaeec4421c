output "rendered" {
  description = "The user_data shell script (bash, for cloud-init on Debian 12)."
  value       = local.rendered
}

output "service_names" {
  description = "Names of the systemd units the script installs (package: enables) and starts, without .service: latency-agent, latency-server, or both for a member."
  value       = [for s in local.services : s.name]
}

output "args" {
  description = "Command-line flags of latency-server (server, member) or of latency-agent (agent)."
  value       = local.runs_server ? local.server_args : local.agent_args
}

output "agent_args" {
  description = "Command-line flags of latency-agent (agent, member); null for a server."
  value       = local.runs_agent ? local.agent_args : null
}

output "install_method" {
  description = "`package` (the .deb from S3), `source` (git clone and CMake build) or `container` (docker run of container_image)."
  value       = local.install_method
}

output "server_config" {
  description = "Server and member: the targets, the probe interval and the source as latency.v1.ServerConfig text proto. Installed from the package, the server reads them from this file (upload it to package.config_key); otherwise they are flags and this is informational."
  value       = local.server_config
}

output "secret_parameters" {
  description = "SSM parameter names the instance reads (TLS material, token): its role needs ssm:GetParameter on exactly these."
  value       = values(local.secret_files)
}

output "ecr_repository" {
  description = "The container image's ECR repository as { account, region, name } (null for an image elsewhere or no image): what the instance role must be allowed to pull."
  value       = local.ecr == null ? null : { account = local.ecr.account, region = local.ecr.region, name = local.ecr.repository }
}

output "egress_ports" {
  description = "TCP ports the script connects out on (besides instance metadata): [443], or [80, 443] for a source build."
  value       = local.egress_ports
}
