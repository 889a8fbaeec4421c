output "security_group_id" {
  description = "ID of the agents' security group."
  value       = aws_security_group.this.id
}

output "instance_ids" {
  description = "Instance IDs keyed by agent name."
  value       = { for k, i in aws_instance.this : k => i.id }
}

output "private_ips" {
  description = "Private IPv4 addresses keyed by agent name: the metrics server's targets."
  value       = { for k, i in aws_instance.this : k => i.private_ip }
}

output "public_ips" {
  description = "Public IPv4 addresses keyed by agent name (egress only: the security group admits no public traffic)."
  value       = { for k, i in aws_instance.this : k => i.public_ip }
}

output "availability_zones" {
  description = "Availability Zone of each agent, keyed by agent name."
  value       = { for k, i in aws_instance.this : k => i.availability_zone }
}

output "ami_id" {
  description = "AMI the agents run."
  value       = local.instance_ami
}

output "iam_role_name" {
  description = "Name of the IAM role created for the agents (null when iam_instance_profile was given)."
  value       = try(module.role[0].role_name, null)
}

output "iam_instance_profile_name" {
  description = "Instance profile attached to the agents."
  value       = local.create_instance_profile ? module.role[0].instance_profile_name : var.iam_instance_profile
}

output "rendered_user_data" {
  description = "The boot script of each agent, keyed by agent name (no secrets in it)."
  value       = { for name, u in module.user_data : name => u.rendered }
}

output "instances" {
  description = "Launch settings of each agent, keyed by agent name: subnet_id, instance_type, private_ip and placement_group."
  value = {
    for k, i in aws_instance.this : k => {
      subnet_id       = i.subnet_id
      instance_type   = i.instance_type
      private_ip      = i.private_ip
      placement_group = var.instances[k].placement_group
    }
  }
}

output "ingress_rules" {
  description = "Every ingress rule of the agents' security group, for audits: what may reach the agents."
  value = [
    for r in concat([aws_vpc_security_group_ingress_rule.icmp_echo, aws_vpc_security_group_ingress_rule.grpc], values(aws_vpc_security_group_ingress_rule.ssh)) : {
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
  description = "Every egress rule of the agents' security group, for audits: where the agents may connect."
  value = [
    for r in values(aws_vpc_security_group_egress_rule.bootstrap) : {
      description = r.description
      ip_protocol = r.ip_protocol
      from_port   = r.from_port
      to_port     = r.to_port
      cidr_ipv4   = r.cidr_ipv4
    }
  ]
}

output "status_parameters" {
  description = "SSM parameter each agent reports its boot and sync outcome to, keyed by agent name."
  value       = local.status_parameters
}

output "iam_policy" {
  description = "The inline policy of the role this module created (null with iam_instance_profile), for audits."
  value       = try(module.role[0].policy, null)
}
