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

output "vpc_id" {
  description = "ID of the VPC."
  value       = module.network.vpc_id
}
