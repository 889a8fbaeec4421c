locals {
  create_instance_profile = var.iam_instance_profile == null
  ami_id                  = var.ami_id != null ? var.ami_id : try(data.aws_ami.debian[0].id, null)
  ami_arch                = var.architecture == "arm64" ? "arm64" : "amd64"
  # A looked-up AMI is kept from the first apply (first_ami): Debian publishing a new image
  # must not replace the instances and lose their statistics, unless follow_new_amis.
  instance_ami = var.ami_id != null || var.follow_new_amis ? local.ami_id : terraform_data.first_ami[0].output

  # What the instance may read from the artifact bucket (package install only).
  artifact_keys     = var.package == null ? [] : compact([var.package.manifest_key, var.package.package_key])
  user_data_package = var.package == null ? null : { bucket = var.package.bucket, manifest_key = var.package.manifest_key }
  status_parameters = { for name in keys(var.instances) : name => "/${var.name}/status/agent-${name}" }
  # TLS material and the token in SSM, readable by exact ARN only.
  secret_parameters = sort(distinct(compact(values(coalesce(var.secrets, {})))))
}

# Newest official Debian 12 image, from Debian's own AWS account. Skipped when ami_id is set.
data "aws_ami" "debian" {
  count = var.ami_id == null ? 1 : 0

  most_recent = true
  owners      = ["136693071363"]

  filter {
    name   = "name"
    values = ["debian-12-${local.ami_arch}-*"]
  }

  filter {
    name   = "architecture"
    values = [var.architecture]
  }

  filter {
    name   = "virtualization-type"
    values = ["hvm"]
  }

  filter {
    name   = "root-device-type"
    values = ["ebs"]
  }
}

# The AMI the lookup found at the first apply, kept (ignore_changes) until this is replaced.
resource "terraform_data" "first_ami" {
  count = var.ami_id == null && !var.follow_new_amis ? 1 : 0

  input = local.ami_id

  lifecycle {
    ignore_changes = [input]
  }
}

module "user_data" {
  source   = "../_user_data"
  for_each = var.instances

  role              = "agent"
  package           = local.user_data_package
  status_parameter  = local.status_parameters[each.key]
  secrets           = var.secrets
  git_url           = var.git_url
  git_ref           = var.git_ref
  container_image   = var.container_image
  install_ssm_agent = var.install_ssm_agent
  agent_grpc_port   = var.grpc_port
  log_level         = var.log_level
  log_format        = var.log_format
}

################################################################################
# Security group: the metrics server may ping and call the agent; nobody else.
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-agent-"
  description = "latency-pair agents: ICMP echo and gRPC from the metrics server only"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = "${var.name}-agent" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "icmp_echo" {
  security_group_id            = aws_security_group.this.id
  description                  = "ICMP echo request from the metrics server"
  referenced_security_group_id = var.metrics_server_security_group_id
  ip_protocol                  = "icmp"
  from_port                    = 8  # ICMP type: echo request
  to_port                      = -1 # ICMP code: any

  tags = merge(var.tags, { Name = "${var.name}-agent-icmp-echo" })
}

resource "aws_vpc_security_group_ingress_rule" "grpc" {
  security_group_id            = aws_security_group.this.id
  description                  = "gRPC echo from the metrics server"
  referenced_security_group_id = var.metrics_server_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.grpc_port
  to_port                      = var.grpc_port

  tags = merge(var.tags, { Name = "${var.name}-agent-grpc" })
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "SSH from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22

  tags = merge(var.tags, { Name = "${var.name}-agent-ssh" })
}

# Egress only for boot and management (packages, image pulls, Session Manager): HTTPS, plus
# HTTP for a source build (module.user_data.egress_ports).
resource "aws_vpc_security_group_egress_rule" "bootstrap" {
  for_each = { for pair in setproduct(sort(distinct(flatten([for u in values(module.user_data) : u.egress_ports]))), var.bootstrap_egress_cidrs) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.this.id
  description       = each.value[0] == 443 ? "HTTPS: S3, SSM, Debian mirror, registry, git" : "HTTP: mirrors a source build may use"
  cidr_ipv4         = each.value[1]
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]

  tags = merge(var.tags, { Name = "${var.name}-agent-egress-${each.value[0]}" })
}

################################################################################
# Instance profile and the status parameter the boot script reports to.
################################################################################

module "role" {
  source = "../_instance_role"
  count  = local.create_instance_profile ? 1 : 0

  name_prefix           = "${var.name}-agent-"
  description           = "latency-pair agents: Session Manager, its artifacts in S3, its status parameter"
  session_manager       = var.install_ssm_agent
  artifact_bucket       = try(var.package.bucket, null)
  artifact_keys         = local.artifact_keys
  secret_parameters     = local.secret_parameters
  ecr_repositories      = distinct([for u in values(module.user_data) : u.ecr_repository if u.ecr_repository != null])
  status_parameter_arns = [for p in aws_ssm_parameter.status : p.arn]
  permissions_boundary  = var.permissions_boundary
  tags                  = var.tags
}

# The boot script and the sync timer write "ok: ..." or "failed: ..." here (README: "When a
# host is not serving"). Terraform creates it and leaves its value to the instance.
resource "aws_ssm_parameter" "status" {
  for_each = local.status_parameters

  name        = each.value
  description = "latency-pair agent ${each.key}: outcome of its boot script and package sync"
  type        = "String"
  value       = "pending: the instance has not reported yet"

  tags = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

################################################################################
# Agents
################################################################################

resource "aws_instance" "this" {
  for_each = var.instances

  ami                         = local.instance_ami
  instance_type               = coalesce(each.value.instance_type, var.instance_type)
  subnet_id                   = each.value.subnet_id
  private_ip                  = each.value.private_ip
  placement_group             = each.value.placement_group
  vpc_security_group_ids      = [aws_security_group.this.id]
  associate_public_ip_address = var.associate_public_ip_address
  iam_instance_profile        = local.create_instance_profile ? module.role[0].instance_profile_name : var.iam_instance_profile
  key_name                    = var.key_name

  user_data                   = module.user_data[each.key].rendered
  user_data_replace_on_change = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required" # IMDSv2 only
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "disabled"
  }

  root_block_device {
    volume_type           = "gp3"
    volume_size           = var.root_volume_size
    encrypted             = true
    kms_key_id            = var.root_volume_kms_key_id
    delete_on_termination = true

    tags = merge(var.tags, { Name = "${var.name}-agent-${each.key}" })
  }

  tags = merge(var.tags, { Name = "${var.name}-agent-${each.key}", Role = "agent" })

  lifecycle {
    precondition {
      condition     = local.ami_id != null
      error_message = "No AMI: set ami_id, or make sure the Debian 12 AMI lookup finds one in this region."
    }
  }
}
