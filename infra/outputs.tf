output "metrics_server_public_ip" {
  description = "Public IPv4 address of the metrics server (same name as the original tool's output)."
  value       = module.metrics_server.public_ip
}

output "metrics_url" {
  description = "Ready-to-use URL of the JSON metrics: curl \"$(terraform output -raw metrics_url)\"."
  value       = module.metrics_server.metrics_url
}

output "grpc_endpoint" {
  description = "host:port of the gRPC query service (plaintext, server reflection on), for latencyctl, grpcurl or buf curl."
  value       = module.metrics_server.grpc_endpoint
}

output "metrics_server_availability_zone" {
  description = "Availability Zone of the metrics server."
  value       = local.server_availability_zone
}

output "metrics_server_instance_id" {
  description = "Instance ID of the metrics server (for aws ssm start-session --target)."
  value       = module.metrics_server.instance_id
}

output "metrics_server_targets" {
  description = "The server's --target flags (NAME=HOST:PORT) in probe order; the first is the one /metrics reports as latency_ms."
  value       = module.metrics_server.targets
}

output "agent_private_ips" {
  description = "Private IPv4 address of each agent, keyed by agent name."
  value       = module.agent.private_ips
}

output "agent_availability_zones" {
  description = "Availability Zone of each agent, keyed by agent name: compare same-AZ and cross-AZ rows with this."
  value       = { for name, agent in local.agents : name => agent.availability_zone }
}

output "agent_instance_ids" {
  description = "Instance ID of each agent, keyed by agent name."
  value       = module.agent.instance_ids
}

output "placement_group_name" {
  description = "Name of the cluster placement group, or null when no agent asked for one."
  value       = local.placement_group
}

output "ssm_session_commands" {
  description = "Commands that open a shell on each instance through Session Manager (no SSH needed)."
  value = merge(
    { metrics-server = "aws ssm start-session --target ${module.metrics_server.instance_id}" },
    { for name, id in module.agent.instance_ids : "agent-${name}" => "aws ssm start-session --target ${id}" },
  )
}

output "status_parameters" {
  description = "SSM parameter each instance writes its boot and package-sync outcome to (\"ok: ...\" or \"failed: <step> ...\"), keyed like ssm_session_commands."
  value = merge(
    { metrics-server = module.metrics_server.status_parameter },
    { for name, p in module.agent.status_parameters : "agent-${name}" => p },
    { for m in module.prometheus : "prometheus" => m.status_parameter },
  )
}

output "status_commands" {
  description = "One command per instance that prints whether it is serving, or why not: terraform output -json status_commands | jq -r '.[]' | sh"
  value = merge(
    { metrics-server = "aws ssm get-parameter --name ${module.metrics_server.status_parameter} --query Parameter.Value --output text" },
    { for name, p in module.agent.status_parameters : "agent-${name}" => "aws ssm get-parameter --name ${p} --query Parameter.Value --output text" },
    { for m in module.prometheus : "prometheus" => "aws ssm get-parameter --name ${m.status_parameter} --query Parameter.Value --output text" },
  )
}

output "metrics_server_user_data" {
  description = "The metrics server's boot script (no secrets in it): what changes it replaces the server."
  value       = module.metrics_server.rendered_user_data
}

output "artifact_bucket" {
  description = "S3 bucket holding the deployed package, its manifest and the server config (null unless package_path is set)."
  value       = try(module.artifacts[0].bucket, null)
}

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}

output "prometheus_port_forward_command" {
  description = "With prometheus_host: Session Manager port forwarding to the Prometheus UI (then open http://localhost:9090); null otherwise."
  value       = try(module.prometheus[0].port_forward_command, null)
}

output "prometheus_private_ip" {
  description = "With prometheus_host: the Prometheus host's private IPv4 address; null otherwise."
  value       = try(module.prometheus[0].private_ip, null)
}
