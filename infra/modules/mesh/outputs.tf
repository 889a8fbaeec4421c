output "member_availability_zones" {
  description = "Availability Zone of each member, keyed by name."
  value       = tomap({ for name, m in var.members : name => m.availability_zone })
}

output "member_private_ips" {
  description = "Private IPv4 address of each member, keyed by name: what the other members probe (and the IP SANs of the member certificate with tls)."
  value       = tomap({ for name, m in module.member : name => m.private_ip })
}

output "member_public_ips" {
  description = "Public IPv4 address of each member (its Elastic IP with elastic_ips), keyed by name."
  value       = tomap({ for name, m in module.member : name => m.public_ip })
}

output "metrics_urls" {
  description = "Each member's JSON metrics URL (latency_ms: its first target), keyed by name."
  value       = tomap({ for name, m in module.member : name => m.metrics_url })
}

output "grpc_endpoints" {
  description = "Each member's gRPC query service (host:port), keyed by name: for latencyctl, grpcurl or buf curl."
  value       = tomap({ for name, m in module.member : name => m.grpc_endpoint })
}

output "member_targets" {
  description = "Each member's targets (NAME=HOST:PORT): every other member, by name."
  value       = tomap({ for name, m in module.member : name => m.targets })
}

output "members" {
  description = "Everything about each member, keyed by name, for audits and automation: instance_id, status_parameter, server_config (its source, the other members, the interval; with package_path, the object its sync timer installs), user_data (no secrets; what changes it replaces the member), security_group_id (its own group), security_group_ids (its own and the mesh's), ingress_rules and egress_rules of its own group (the Prometheus host's rule: prometheus_scraped_ingress_rules)."
  value = tomap({
    for name, m in module.member : name => {
      instance_id        = m.instance_id
      status_parameter   = m.status_parameter
      server_config      = m.server_config
      user_data          = m.rendered_user_data
      security_group_id  = m.security_group_id
      security_group_ids = m.security_group_ids
      ingress_rules      = m.ingress_rules
      egress_rules       = m.egress_rules
    }
  })
}

output "matrix_command" {
  description = "latencyctl matrix with every member's gRPC query address: the source x target matrix of the latest RTT, straight from the servers (with tls and the token: --tls_ca and --auth_token_file name local copies of the CA and the token)."
  value = join(" ", concat(
    ["latencyctl matrix"],
    [for name in local.names : module.member[name].grpc_endpoint],
    var.tls != null ? ["--tls_ca=ca.crt"] : [],
    var.auth_token_parameter != null ? ["--auth_token_file=token"] : [],
  ))
}

output "ssm_session_commands" {
  description = "Commands that open a shell on each instance through Session Manager (no SSH needed)."
  value = merge(
    { for name, m in module.member : "member-${name}" => "aws ssm start-session --target ${m.instance_id}" },
    { for p in module.prometheus : "prometheus" => "aws ssm start-session --target ${p.instance_id}" },
  )
}

output "status_parameters" {
  description = "SSM parameter each instance writes its boot and package-sync outcome to (\"ok: ...\" or \"failed: <step> ...\"), keyed like ssm_session_commands."
  value = merge(
    { for name, m in module.member : "member-${name}" => m.status_parameter },
    { for p in module.prometheus : "prometheus" => p.status_parameter },
  )
}

output "status_commands" {
  description = "One command per instance that prints whether it is serving, or why not: terraform output -json status_commands | jq -r '.[]' | sh"
  value = merge(
    { for name, m in module.member : "member-${name}" => "aws ssm get-parameter --name ${m.status_parameter} --query Parameter.Value --output text" },
    { for p in module.prometheus : "prometheus" => "aws ssm get-parameter --name ${p.status_parameter} --query Parameter.Value --output text" },
  )
}

output "security_group_id" {
  description = "ID of the mesh's security group, which every member is in: ICMP echo and the agents' gRPC port from its own members only."
  value       = aws_security_group.mesh.id
}

output "ingress_rules" {
  description = "Every ingress rule of the mesh's security group, for audits: who may probe the members."
  value = [
    for r in [aws_vpc_security_group_ingress_rule.icmp_echo, aws_vpc_security_group_ingress_rule.grpc] : {
      description                  = r.description
      ip_protocol                  = r.ip_protocol
      from_port                    = r.from_port
      to_port                      = r.to_port
      cidr_ipv4                    = r.cidr_ipv4
      referenced_security_group_id = r.referenced_security_group_id
    }
  ]
}

output "subnet_cidrs" {
  description = "The public subnet of each Availability Zone in use, where the members' default addresses come from."
  value       = local.subnet_cidrs
}

output "artifact_bucket" {
  description = "S3 bucket holding the package, its manifest and the members' configs (null unless package_path is set)."
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

output "prometheus_config" {
  description = "With prometheus_host: the prometheus.yml the host runs (EC2 discovery of every member); null otherwise."
  value       = try(module.prometheus[0].prometheus_config, null)
}

output "prometheus_scraped_ingress_rules" {
  description = "With prometheus_host: the rules admitting the Prometheus host on each member's HTTP port; empty otherwise."
  value       = try(module.prometheus[0].scraped_ingress_rules, [])
}
