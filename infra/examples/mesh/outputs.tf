output "member_availability_zones" {
  description = "Availability Zone of each member."
  value       = module.mesh.member_availability_zones
}

output "member_public_ips" {
  description = "Public IPv4 address of each member."
  value       = module.mesh.member_public_ips
}

output "member_private_ips" {
  description = "Private IPv4 address of each member (what the other members probe)."
  value       = module.mesh.member_private_ips
}

output "metrics_urls" {
  description = "curl these for each member's JSON metrics."
  value       = module.mesh.metrics_urls
}

output "grpc_endpoints" {
  description = "Each member's gRPC query service (host:port)."
  value       = module.mesh.grpc_endpoints
}

output "member_targets" {
  description = "Each member's targets: every other member."
  value       = module.mesh.member_targets
}

output "matrix_command" {
  description = "Run this for the source x target matrix: latencyctl matrix with every member's gRPC address."
  value       = module.mesh.matrix_command
}

output "ssm_session_commands" {
  description = "Session Manager commands to open a shell on each instance."
  value       = module.mesh.ssm_session_commands
}

output "status_commands" {
  description = "One command per instance that prints whether it is serving, or why not."
  value       = module.mesh.status_commands
}

output "prometheus_port_forward_command" {
  description = "With prometheus_host: Session Manager port forwarding to the Prometheus UI (then open http://localhost:9090)."
  value       = module.mesh.prometheus_port_forward_command
}
