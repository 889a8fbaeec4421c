locals {
  create_instance_profile = var.iam_instance_profile == null
  ami_id                  = var.ami_id != null ? var.ami_id : try(data.aws_ami.debian[0].id, null)
  ami_arch                = var.architecture == "arm64" ? "arm64" : "amd64"
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

data "aws_partition" "current" {
  count = local.create_instance_profile ? 1 : 0
}

module "user_data" {
  source = "../_user_data"

  role              = "agent"
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

# Egress only for boot and management: packages, git, image pulls and Session Manager.
resource "aws_vpc_security_group_egress_rule" "bootstrap" {
  for_each = { for pair in setproduct([80, 443], var.bootstrap_egress_cidrs) : "${pair[0]}-${pair[1]}" => pair }

  security_group_id = aws_security_group.this.id
  description       = each.value[0] == 443 ? "HTTPS: git, registry, SSM" : "HTTP: Debian package mirrors"
  cidr_ipv4         = each.value[1]
  ip_protocol       = "tcp"
  from_port         = each.value[0]
  to_port           = each.value[0]

  tags = merge(var.tags, { Name = "${var.name}-agent-egress-${each.value[0]}" })
}

################################################################################
# Instance profile: Session Manager only.
################################################################################

resource "aws_iam_role" "this" {
  count = local.create_instance_profile ? 1 : 0

  name_prefix = "${var.name}-agent-"
  description = "latency-pair agents: Session Manager access only"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Action    = "sts:AssumeRole"
      Principal = { Service = "ec2.amazonaws.com" }
    }]
  })

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "ssm" {
  count = local.create_instance_profile ? 1 : 0

  role       = aws_iam_role.this[0].name
  policy_arn = "arn:${data.aws_partition.current[0].partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "this" {
  count = local.create_instance_profile ? 1 : 0

  name_prefix = "${var.name}-agent-"
  role        = aws_iam_role.this[0].name

  tags = var.tags
}

################################################################################
# Agents
################################################################################

resource "aws_instance" "this" {
  for_each = var.instances

  ami                         = local.ami_id
  instance_type               = coalesce(each.value.instance_type, var.instance_type)
  subnet_id                   = each.value.subnet_id
  private_ip                  = each.value.private_ip
  placement_group             = each.value.placement_group
  vpc_security_group_ids      = [aws_security_group.this.id]
  associate_public_ip_address = var.associate_public_ip_address
  iam_instance_profile        = local.create_instance_profile ? aws_iam_instance_profile.this[0].name : var.iam_instance_profile
  key_name                    = var.key_name

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
