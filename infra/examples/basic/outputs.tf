output "metrics_server_public_ip" {
  description = "Public IPv4 address of the metrics server."
  value       = module.latency_pair.metrics_server_public_ip
}

output "metrics_url" {
  description = "curl this for the JSON metrics."
  value       = module.latency_pair.metrics_url
}

output "grpc_endpoint" {
  description = "host:port of the gRPC query service."
  value       = module.latency_pair.grpc_endpoint
}

output "agent_private_ips" {
  description = "Private IPv4 address of each agent."
  value       = module.latency_pair.agent_private_ips
}

output "agent_availability_zones" {
  description = "Availability Zone of each agent."
  value       = module.latency_pair.agent_availability_zones
}

output "metrics_server_targets" {
  description = "Targets in probe order; the first is the one /metrics reports as latency_ms."
  value       = module.latency_pair.metrics_server_targets
}

output "ssm_session_commands" {
  description = "Session Manager commands to open a shell on each instance."
  value       = module.latency_pair.ssm_session_commands
}

output "status_commands" {
  description = "One command per instance that prints whether it is serving, or why not."
  value       = module.latency_pair.status_commands
}
