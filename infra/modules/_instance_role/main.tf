# The IAM role of a latency-pair instance: exactly what its boot script and sync timer call,
# each on the exact resources, nothing on "*" but what Session Manager, ECR's token call and
# EC2's Describe calls (Prometheus' discovery) require.

data "aws_partition" "current" {}

data "aws_region" "current" {
  count = length(var.secret_parameters) > 0 ? 1 : 0
}

data "aws_caller_identity" "current" {
  count = length(var.secret_parameters) > 0 ? 1 : 0
}

locals {
  # IAM takes at most 38 characters of a role's name prefix (64 less the unique suffix); a mesh
  # member's NAME-member-KEY- can be longer, and its tags and description say whose it is.
  name_prefix         = substr(var.name_prefix, 0, 38)
  partition           = data.aws_partition.current.partition
  artifact_arns       = [for key in var.artifact_keys : "arn:${local.partition}:s3:::${var.artifact_bucket}/${key}"]
  ecr_repository_arns = [for r in var.ecr_repositories : "arn:${local.partition}:ecr:${r.region}:${r.account}:repository/${r.name}"]
  secret_arns = [
    for name in var.secret_parameters :
    "arn:${local.partition}:ssm:${data.aws_region.current[0].name}:${data.aws_caller_identity.current[0].account_id}:parameter/${trimprefix(name, "/")}"
  ]

  statements = concat(
    var.session_manager ? [{
      # AWS's minimal Session Manager policy (not AmazonSSMManagedInstanceCore, which also
      # grants ssm:GetParameter* on every parameter of the account).
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
    }] : [],
    length(local.artifact_arns) > 0 ? [{
      Sid      = "ReadTheArtifacts"
      Effect   = "Allow"
      Action   = "s3:GetObject"
      Resource = local.artifact_arns
    }] : [],
    length(local.ecr_repository_arns) > 0 ? [{
      Sid      = "PullTheImage"
      Effect   = "Allow"
      Action   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      Resource = local.ecr_repository_arns
    }] : [],
    length(local.ecr_repository_arns) > 0 ? [{
      # ECR's token call takes no resource: "*" is the only value it accepts.
      Sid      = "ECRAuthorizationToken"
      Effect   = "Allow"
      Action   = "ecr:GetAuthorizationToken"
      Resource = "*"
    }] : [],
    var.discover_instances ? [{
      # EC2's Describe calls take no resource: "*" is the only value they accept.
      Sid      = "DiscoverScrapeTargets"
      Effect   = "Allow"
      Action   = ["ec2:DescribeAvailabilityZones", "ec2:DescribeInstances"]
      Resource = "*"
    }] : [],
    length(local.secret_arns) > 0 ? [{
      # SecureStrings under the AWS managed key (aws/ssm) need no kms:Decrypt grant here; a
      # customer key needs kms:Decrypt in its key policy for this role.
      Sid      = "ReadTLSMaterialAndToken"
      Effect   = "Allow"
      Action   = "ssm:GetParameter"
      Resource = local.secret_arns
    }] : [],
    length(var.status_parameter_arns) > 0 ? [{
      Sid      = "ReportBootStatus"
      Effect   = "Allow"
      Action   = "ssm:PutParameter"
      Resource = var.status_parameter_arns
    }] : [],
  )
}

resource "aws_iam_role" "this" {
  name_prefix          = local.name_prefix
  description          = var.description
  permissions_boundary = var.permissions_boundary
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

resource "aws_iam_role_policy" "this" {
  count = length(local.statements) > 0 ? 1 : 0

  name   = "latency-pair-instance"
  role   = aws_iam_role.this.id
  policy = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = local.name_prefix
  role        = aws_iam_role.this.name

  tags = var.tags
}
