output "role_name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "instance_profile_name" {
  description = "Name of the instance profile holding the role."
  value       = aws_iam_instance_profile.this.name
}

output "policy" {
  description = "The role's inline policy as an object (Statement list), for audits and tests; null when it grants nothing."
  value       = length(local.statements) > 0 ? { Version = "2012-10-17", Statement = local.statements } : null
}
