output "security_group_id" {
  description = "ID of the metrics server's security group."
  value       = aws_security_group.this.id
}

output "security_group_ids" {
  description = "Every security group of the instance: its own and additional_security_group_ids."
  value       = aws_instance.this.vpc_security_group_ids
}

output "instance_id" {
  description = "Instance ID of the metrics server."
  value       = aws_instance.this.id
}

output "public_ip" {
  description = "Public IPv4 address of the metrics server: its Elastic IP with elastic_ip (empty without either that or associate_public_ip_address)."
  value       = local.public_ip
}

output "private_ip" {
  description = "Private IPv4 address of the metrics server."
  value       = aws_instance.this.private_ip
}

output "availability_zone" {
  description = "Availability Zone of the metrics server."
  value       = aws_instance.this.availability_zone
}

output "metrics_url" {
  description = "URL of the JSON metrics endpoint, e.g. for curl."
  value       = "${try(var.secrets.cert, null) != null ? "https" : "http"}://${local.address}:${var.http_port}/metrics"
}

output "grpc_endpoint" {
  description = "host:port of the gRPC query service (plaintext, with server reflection)."
  value       = "${local.address}:${var.grpc_port}"
}

output "targets" {
  description = "The --target flags the server was started with, in order."
  value       = [for t in var.targets : "${t.name}=${t.host}:${t.port}"]
}

output "ami_id" {
  description = "AMI the metrics server runs."
  value       = local.instance_ami
}

output "iam_role_name" {
  description = "Name of the IAM role created for the server (null when iam_instance_profile was given)."
  value       = try(module.role[0].role_name, null)
}

output "iam_instance_profile_name" {
  description = "Instance profile attached to the metrics server."
  value       = local.create_instance_profile ? module.role[0].instance_profile_name : var.iam_instance_profile
}

output "rendered_user_data" {
  description = "The boot script of the metrics server (no secrets in it)."
  value       = module.user_data.rendered
}

output "subnet_id" {
  description = "Subnet the metrics server runs in."
  value       = aws_instance.this.subnet_id
}

output "placement_group" {
  description = "Placement group the metrics server was launched in (null for none)."
  value       = var.placement_group
}

output "ingress_rules" {
  description = "Every ingress rule of the metrics server's security group, for audits: who may reach the server."
  value = [
    for r in concat(values(aws_vpc_security_group_ingress_rule.public), values(aws_vpc_security_group_ingress_rule.ssh)) : {
      description                  = r.description
      ip_protocol                  = r.ip_protocol
      from_port                    = r.from_port
      to_port                      = r.to_port
      cidr_ipv4                    = r.cidr_ipv4
      referenced_security_group_id = r.referenced_security_group_id
    }
  ]
}

output "egress_rules" {
  description = "Every egress rule of the metrics server's security group, for audits: where the server may connect."
  value = [
    for r in concat([aws_vpc_security_group_egress_rule.agent_icmp_echo, aws_vpc_security_group_egress_rule.agent_grpc], values(aws_vpc_security_group_egress_rule.bootstrap)) : {
      description                  = r.description
      ip_protocol                  = r.ip_protocol
      from_port                    = r.from_port
      to_port                      = r.to_port
      cidr_ipv4                    = r.cidr_ipv4
      referenced_security_group_id = r.referenced_security_group_id
    }
  ]
}

output "status_parameter" {
  description = "SSM parameter the server reports its boot and sync outcome to."
  value       = local.status_parameter
}

output "server_config" {
  description = "The targets and probe interval as latency.v1.ServerConfig text proto: what the root module uploads for a package install."
  value       = module.user_data.server_config
}

output "iam_policy" {
  description = "The inline policy of the role this module created (null with iam_instance_profile), for audits."
  value       = try(module.role[0].policy, null)
}

output "instance_tags" {
  description = "Tags of the metrics server instance (Role and LatencyPair select it for Prometheus' EC2 discovery)."
  value       = aws_instance.this.tags
}
