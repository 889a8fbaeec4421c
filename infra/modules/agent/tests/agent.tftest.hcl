mock_provider "aws" {
  mock_data "aws_ami" {
    defaults = { id = "ami-0d0e0b0i0a0n0120" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
}

variables {
  name                             = "lp-test"
  vpc_id                           = "vpc-0123456789abcdef0"
  metrics_server_security_group_id = "sg-0a0a0a0a0a0a0a0a0"
  git_url                          = "https://github.com/example/latency-pair.git"
  instances = {
    same-az  = { subnet_id = "subnet-0aaaaaaaaaaaaaaaa" }
    cross-az = { subnet_id = "subnet-0bbbbbbbbbbbbbbbb", instance_type = "c6i.large", private_ip = "10.42.1.10" }
  }
  tags = { Project = "latency-pair" }
}

run "icmp_and_grpc_only_from_the_server_group" {
  command = plan

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.icmp_echo.referenced_security_group_id == "sg-0a0a0a0a0a0a0a0a0" &&
      aws_vpc_security_group_ingress_rule.icmp_echo.cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.icmp_echo.ip_protocol == "icmp" &&
      aws_vpc_security_group_ingress_rule.icmp_echo.from_port == 8
    )
    error_message = "ICMP must be echo requests (type 8) from the metrics server's group only."
  }

  assert {
    condition = (
      aws_vpc_security_group_ingress_rule.grpc.referenced_security_group_id == "sg-0a0a0a0a0a0a0a0a0" &&
      aws_vpc_security_group_ingress_rule.grpc.cidr_ipv4 == null &&
      aws_vpc_security_group_ingress_rule.grpc.ip_protocol == "tcp" &&
      aws_vpc_security_group_ingress_rule.grpc.from_port == 50051 &&
      aws_vpc_security_group_ingress_rule.grpc.to_port == 50051
    )
    error_message = "gRPC must be the agent's port only, from the metrics server's group only."
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 0
    error_message = "No SSH rule may exist unless ssh_cidrs is given."
  }

  assert {
    condition     = alltrue([for r in aws_vpc_security_group_egress_rule.bootstrap : r.ip_protocol == "tcp" && contains([80, 443], r.from_port) && r.from_port == r.to_port])
    error_message = "Agents may only reach out on TCP 80 and 443."
  }
}

run "ssh_only_from_given_cidrs" {
  command = plan

  variables {
    ssh_cidrs = ["203.0.113.0/24"]
    key_name  = "ops"
  }

  assert {
    condition     = length(aws_vpc_security_group_ingress_rule.ssh) == 1 && aws_vpc_security_group_ingress_rule.ssh["203.0.113.0/24"].from_port == 22 && aws_vpc_security_group_ingress_rule.ssh["203.0.113.0/24"].cidr_ipv4 == "203.0.113.0/24"
    error_message = "SSH must open port 22 to exactly the given CIDRs."
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : i.key_name == "ops"])
    error_message = "The key pair must be attached when SSH is requested."
  }
}

run "imdsv2_encryption_and_placement" {
  command = plan

  assert {
    condition     = alltrue([for i in aws_instance.this : i.metadata_options[0].http_tokens == "required" && i.metadata_options[0].http_put_response_hop_limit == 1])
    error_message = "Every agent must require IMDSv2 with a hop limit of 1."
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : i.root_block_device[0].encrypted && i.root_block_device[0].volume_type == "gp3"])
    error_message = "Every root volume must be encrypted gp3."
  }

  assert {
    condition     = aws_instance.this["same-az"].instance_type == "t3.small" && aws_instance.this["cross-az"].instance_type == "c6i.large"
    error_message = "Per-agent instance_type must override the default."
  }

  assert {
    condition     = aws_instance.this["cross-az"].private_ip == "10.42.1.10" && aws_instance.this["cross-az"].subnet_id == "subnet-0bbbbbbbbbbbbbbbb"
    error_message = "Per-agent subnet and private_ip must be used."
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : i.associate_public_ip_address])
    error_message = "Agents must get a public IP for egress."
  }

  assert {
    condition     = strcontains(aws_instance.this["same-az"].user_data, "--listen=0.0.0.0:50051") && aws_instance.this["same-az"].user_data_replace_on_change
    error_message = "Agents must boot latency-agent on the gRPC port."
  }
}

run "least_privilege_role" {
  command = apply

  assert {
    condition = jsonencode(module.role[0].policy.Statement[0]) == jsonencode({
      Sid    = "SessionManager"
      Effect = "Allow"
      Action = [
        "ssm:UpdateInstanceInformation",
        "ssmmessages:CreateControlChannel",
        "ssmmessages:CreateDataChannel",
        "ssmmessages:OpenControlChannel",
        "ssmmessages:OpenDataChannel",
      ]
      Resource = "*"
    })
    error_message = "Session Manager must get AWS's minimal policy, not AmazonSSMManagedInstanceCore (ssm:GetParameter* on every parameter)."
  }

  assert {
    condition = (
      length(module.role[0].policy.Statement) == 2 &&
      module.role[0].policy.Statement[1].Action == "ssm:PutParameter" &&
      toset(module.role[0].policy.Statement[1].Resource) == toset([for p in aws_ssm_parameter.status : p.arn])
    )
    error_message = "Built from source, agents may write their own status parameters and nothing else (no S3)."
  }

  assert {
    condition     = aws_ssm_parameter.status["cross-az"].name == "/lp-test/status/agent-cross-az" && strcontains(aws_instance.this["cross-az"].user_data, "readonly STATUS_PARAMETER='/lp-test/status/agent-cross-az'")
    error_message = "Each agent must report to its own status parameter."
  }
}

run "package_install_reads_exactly_its_objects" {
  command = apply

  variables {
    git_url              = null
    package              = { bucket = "lp-artifacts-0123", manifest_key = "manifest", package_key = "packages/latency-pair_1.2.3_amd64-0123456789abcdef.deb" }
    permissions_boundary = "arn:aws:iam::123456789012:policy/boundary"
  }

  assert {
    # jsonencode: the policy's lists and these tuples compare by value only as JSON.
    condition = jsonencode(module.role[0].policy.Statement[1]) == jsonencode({
      Sid      = "ReadTheArtifacts"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = ["arn:aws:s3:::lp-artifacts-0123/manifest", "arn:aws:s3:::lp-artifacts-0123/packages/latency-pair_1.2.3_amd64-0123456789abcdef.deb"]
    })
    error_message = "Agents may read the manifest and the package, by exact ARN, nothing else in the bucket."
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : strcontains(i.user_data, "readonly BUCKET='lp-artifacts-0123'") && strcontains(i.user_data, "latency-pair-sync") && !strcontains(i.user_data, "git ")])
    error_message = "A package install must fetch from the bucket and build nothing."
  }
}

run "first_looked_up_ami_is_kept" {
  command = apply

  assert {
    condition     = alltrue([for i in aws_instance.this : i.ami == "ami-0d0e0b0i0a0n0120"])
    error_message = "Agents must boot the looked-up Debian AMI."
  }
}

run "a_newer_debian_ami_does_not_replace_agents" {
  command = apply

  override_data {
    target = data.aws_ami.debian[0]
    values = { id = "ami-0newer0000000000" }
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : i.ami == "ami-0d0e0b0i0a0n0120"])
    error_message = "A newer Debian AMI must not replace running agents: they keep the AMI of their first apply."
  }
}

run "follow_new_amis_takes_the_newer_one" {
  command = apply

  variables {
    follow_new_amis = true
  }

  override_data {
    target = data.aws_ami.debian[0]
    values = { id = "ami-0newer0000000000" }
  }

  assert {
    condition     = alltrue([for i in aws_instance.this : i.ami == "ami-0newer0000000000"])
    error_message = "follow_new_amis = true must move the agents to the newest AMI."
  }
}

run "explicit_ami_and_profile_skip_lookups" {
  command = plan

  variables {
    ami_id               = "ami-0123456789abcdef0"
    iam_instance_profile = "existing-profile"
  }

  assert {
    condition     = length(data.aws_ami.debian) == 0 && alltrue([for i in aws_instance.this : i.ami == "ami-0123456789abcdef0"])
    error_message = "ami_id must skip the AMI lookup."
  }

  assert {
    condition     = length(module.role) == 0 && alltrue([for i in aws_instance.this : i.iam_instance_profile == "existing-profile"])
    error_message = "iam_instance_profile must be used as is, without creating a role."
  }
}

run "tags_on_everything" {
  command = plan

  assert {
    condition = alltrue([for t in concat(
      [aws_security_group.this.tags, aws_vpc_security_group_ingress_rule.icmp_echo.tags, aws_vpc_security_group_ingress_rule.grpc.tags, ],
      [for p in aws_ssm_parameter.status : p.tags],
      [for r in aws_vpc_security_group_egress_rule.bootstrap : r.tags],
      [for i in aws_instance.this : i.tags],
      [for i in aws_instance.this : i.root_block_device[0].tags],
    ) : t["Project"] == "latency-pair"])
    error_message = "Every taggable resource, root volumes included, must carry the caller's tags."
  }
}

run "reject_world_open_ssh" {
  command = plan
  variables {
    ssh_cidrs = ["0.0.0.0/0"]
    key_name  = "ops"
  }
  expect_failures = [var.ssh_cidrs]
}

run "reject_ssh_without_key" {
  command = plan
  variables {
    ssh_cidrs = ["203.0.113.7/32"]
  }
  expect_failures = [var.ssh_cidrs]
}

run "reject_bad_agents" {
  command = plan
  variables {
    instances = {
      "Agent One" = { subnet_id = "subnet-0aaaaaaaaaaaaaaaa", private_ip = "10.42.300.1" }
    }
  }
  expect_failures = [var.instances]
}
