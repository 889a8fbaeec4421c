locals {
  # Name tag and name prefix of every resource: NAME-server, or NAME-member-KEY in a mesh.
  full_name               = "${var.name}-${var.instance_name}"
  what                    = var.run_agent ? "latency-pair mesh member" : "latency-pair metrics server"
  create_instance_profile = var.iam_instance_profile == null
  ami_id                  = var.ami_id != null ? var.ami_id : try(data.aws_ami.debian[0].id, null)
  ami_arch                = var.architecture == "arm64" ? "arm64" : "amd64"
  # A looked-up AMI is kept from the first apply (first_ami): Debian publishing a new image
  # must not replace the instances and lose their statistics, unless follow_new_amis.
  public_ip = var.elastic_ip ? aws_eip.this[0].public_ip : aws_instance.this.public_ip
  # Where users reach the server: its public address when it has one.
  address      = var.associate_public_ip_address || var.elastic_ip ? local.public_ip : aws_instance.this.private_ip
  instance_ami = var.ami_id != null || var.follow_new_amis ? local.ami_id : terraform_data.first_ami[0].output

  # What the instance may read from the artifact bucket (package install only).
  artifact_keys    = var.package == null ? [] : compact([var.package.manifest_key, var.package.package_key, var.package.config_key])
  status_parameter = "/${var.name}/status/${var.instance_name}"
  # TLS material and the token in SSM, readable by exact ARN only.
  secret_parameters = sort(distinct(compact(values(coalesce(var.secrets, {})))))

  # Users reach /metrics and the gRPC query service from allowed_cidrs, nothing else.
  public_ingress = {
    for pair in setproduct([var.http_port, var.grpc_port], var.allowed_cidrs) : "${pair[0]}-${pair[1]}" => {
      port = pair[0]
      cidr = pair[1]
    }
  }
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
  source = "../_user_data"

  # A mesh member also runs latency-agent, which the other members probe.
  role              = var.run_agent ? "member" : "server"
  package           = var.package == null ? null : { bucket = var.package.bucket, manifest_key = var.package.manifest_key, config_key = var.package.config_key }
  status_parameter  = local.status_parameter
  secrets           = var.secrets
  git_url           = var.git_url
  git_ref           = var.git_ref
  container_image   = var.container_image
  install_ssm_agent = var.install_ssm_agent
  targets           = var.targets
  vantage_point     = var.vantage_point
  grpc_port         = var.grpc_port
  http_port         = var.http_port
  probe_interval    = var.probe_interval
  log_level         = var.log_level
  agent_grpc_port   = var.agent_grpc_port
  log_format        = var.log_format
}

################################################################################
# Security group: users in allowed_cidrs reach HTTP and gRPC; probes go to the agents.
################################################################################

resource "aws_security_group" "this" {
  name_prefix = "${local.full_name}-"
  description = var.run_agent ? "latency-pair mesh member: HTTP and gRPC from allowed_cidrs, probes to the other members" : "latency-pair metrics server: HTTP and gRPC from allowed_cidrs, probes to the agents"
  vpc_id      = var.vpc_id

  tags = merge(var.tags, { Name = local.full_name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "public" {
  for_each = local.public_ingress

  security_group_id = aws_security_group.this.id
  description       = each.value.port == var.http_port ? "HTTP /metrics from an allowed network" : "gRPC query service from an allowed network"
  cidr_ipv4         = each.value.cidr
  ip_protocol       = "tcp"
  from_port         = each.value.port
  to_port           = each.value.port

  tags = merge(var.tags, { Name = "${local.full_name}-${each.value.port == var.http_port ? "http" : "grpc"}" })
}

resource "aws_vpc_security_group_ingress_rule" "ssh" {
  for_each = toset(var.ssh_cidrs)

  security_group_id = aws_security_group.this.id
  description       = "SSH from an operator network"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 22
  to_port           = 22

  tags = merge(var.tags, { Name = "${local.full_name}-ssh" })
}

resource "aws_vpc_security_group_egress_rule" "agent_icmp_echo" {
  security_group_id            = aws_security_group.this.id
  description                  = "ICMP echo request to the agents"
  referenced_security_group_id = var.agent_security_group_id
  ip_protocol                  = "icmp"
  from_port                    = 8  # ICMP type: echo request
  to_port                      = -1 # ICMP code: any

  tags = merge(var.tags, { Name = "${local.full_name}-to-agents-icmp" })
}

resource "aws_vpc_security_group_egress_rule" "agent_grpc" {
  security_group_id            = aws_security_group.this.id
  description                  = "gRPC echo to the agents"
  referenced_security_group_id = var.agent_security_group_id
  ip_protocol                  = "tcp"
  from_port                    = var.agent_grpc_port
  to_port                      = var.agent_grpc_port

  tags = merge(var.tags, { Name = "${local.full_name}-to-agents-grpc" })
}

# Egress for boot and management (packages, image pulls, Session Manager): HTTPS, plus HTTP
# for a source build (module.user_data.egress_ports).
resource "aws_vpc_security_group_egress_rule" "bootstrap" {
  for_each = { for pair in setproduct(module.user_data.egress_ports, var.bootstrap_egress_cidrs) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.this.id
  description       = each.value[0] == 443 ? "HTTPS: S3, SSM, Debian mirror, registry, git" : "HTTP: mirrors a source build may use"
  cidr_ipv4         = each.value[1]
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]

  tags = merge(var.tags, { Name = "${local.full_name}-egress-${each.value[0]}" })
}

################################################################################
# Instance profile and the status parameter the boot script reports to.
################################################################################

# The boot script and the sync timer write "ok: ..." or "failed: ..." here (README: "When a
# host is not serving"). Terraform creates it and leaves its value to the instance.
resource "aws_ssm_parameter" "status" {
  name        = local.status_parameter
  description = "${local.what}: outcome of its boot script and package sync"
  type        = "String"
  value       = "pending: the instance has not reported yet"

  tags = var.tags

  lifecycle {
    ignore_changes = [value]
  }
}

module "role" {
  source = "../_instance_role"
  count  = local.create_instance_profile ? 1 : 0

  name_prefix           = "${local.full_name}-"
  description           = "${local.what}: Session Manager, its artifacts in S3, its status parameter"
  session_manager       = var.install_ssm_agent
  artifact_bucket       = try(var.package.bucket, null)
  artifact_keys         = local.artifact_keys
  secret_parameters     = local.secret_parameters
  ecr_repositories      = module.user_data.ecr_repository == null ? [] : [module.user_data.ecr_repository]
  status_parameter_arns = [aws_ssm_parameter.status.arn]
  permissions_boundary  = var.permissions_boundary
  tags                  = var.tags
}

################################################################################
# Metrics server
################################################################################

resource "aws_instance" "this" {
  ami                         = local.instance_ami
  instance_type               = var.instance_type
  subnet_id                   = var.subnet_id
  private_ip                  = var.private_ip
  placement_group             = var.placement_group
  vpc_security_group_ids      = concat([aws_security_group.this.id], var.additional_security_group_ids)
  associate_public_ip_address = var.associate_public_ip_address
  iam_instance_profile        = local.create_instance_profile ? module.role[0].instance_profile_name : var.iam_instance_profile
  key_name                    = var.key_name

  # The targets are in user_data: a new agent list means a new server (and a new public IP).
  user_data                   = module.user_data.rendered
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

    tags = merge(var.tags, { Name = local.full_name })
  }

  # Role and LatencyPair select it for Prometheus' EC2 discovery (modules/prometheus); a mesh
  # member is a metrics server too.
  tags = merge(var.tags, { Name = local.full_name, Role = "metrics-server", LatencyPair = var.name })

  lifecycle {
    precondition {
      condition     = local.ami_id != null
      error_message = "No AMI: set ami_id, or make sure the Debian 12 AMI lookup finds one in this region."
    }
  }
}

# A stable public address: the metrics URL survives the server being replaced (a new boot
# script, a new AMI with follow_new_amis).
resource "aws_eip" "this" {
  count = var.elastic_ip ? 1 : 0

  domain = "vpc"

  tags = merge(var.tags, { Name = local.full_name })
}

resource "aws_eip_association" "this" {
  count = var.elastic_ip ? 1 : 0

  instance_id   = aws_instance.this.id
  allocation_id = aws_eip.this[0].id
}
