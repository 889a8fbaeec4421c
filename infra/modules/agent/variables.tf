variable "name" {
  description = "Name prefix for every resource (Name tags, security group and IAM name prefixes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "vpc_id" {
  description = "ID of the VPC the agents' security group belongs to."
  type        = string
}

variable "instances" {
  description = "Agents to launch, keyed by name (the name the metrics server reports). subnet_id places the agent (and so picks its Availability Zone); instance_type overrides var.instance_type; private_ip pins the address; placement_group joins an existing placement group."
  type = map(object({
    subnet_id       = string
    instance_type   = optional(string)
    private_ip      = optional(string)
    placement_group = optional(string)
  }))

  validation {
    condition     = length(var.instances) >= 1 && length(var.instances) <= 20
    error_message = "Launch between 1 and 20 agents."
  }

  validation {
    condition     = alltrue([for k in keys(var.instances) : can(regex("^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$", k))])
    error_message = "Agent names must be 1-32 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit."
  }

  validation {
    condition     = alltrue([for i in values(var.instances) : i.instance_type == null || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", i.instance_type))])
    error_message = "Every instance_type must be an EC2 instance type such as t3.small."
  }

  validation {
    condition     = alltrue([for i in values(var.instances) : i.private_ip == null || can(regex("^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$", i.private_ip))])
    error_message = "Every private_ip must be an IPv4 address."
  }
}

variable "instance_type" {
  description = "Default EC2 instance type of the agents."
  type        = string
  default     = "t3.small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "instance_type must be an EC2 instance type such as t3.small."
  }
}

variable "architecture" {
  description = "CPU architecture of the Debian 12 AMI to look up: x86_64 or arm64 (must match the instance types)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "follow_new_amis" {
  description = "With ami_id null: true replaces the instances whenever a newer Debian 12 AMI appears at an apply; false (the default) keeps the AMI found at the first apply."
  type        = bool
  default     = false
}

variable "ami_id" {
  description = "AMI to launch. null looks up the newest official Debian 12 AMI (owner 136693071363, Debian's AWS account)."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI ID such as ami-0123456789abcdef0."
  }
}

variable "metrics_server_security_group_id" {
  description = "Security group of the metrics server: the only source allowed to send ICMP echo and gRPC to the agents."
  type        = string
}

variable "grpc_port" {
  description = "TCP port latency-agent listens on for gRPC echo."
  type        = number
  default     = 50051

  validation {
    condition     = var.grpc_port == floor(var.grpc_port) && var.grpc_port >= 1 && var.grpc_port <= 65535 && var.grpc_port != 22
    error_message = "grpc_port must be an integer between 1 and 65535 (and not 22)."
  }
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair repository to build from source. Exactly one of git_url and container_image must be set."
  type        = string
  default     = null
}

variable "git_ref" {
  description = "Branch, tag or commit SHA of git_url to build."
  type        = string
  default     = "main"
}

variable "container_image" {
  description = "Container image with both binaries; when set, the agents run it with docker instead of building from source."
  type        = string
  default     = null
}

variable "log_level" {
  description = "latency-agent --log_level: trace, debug, info, warn, error, critical or off."
  type        = string
  default     = "info"
}

variable "log_format" {
  description = "latency-agent --log_format: text or json."
  type        = string
  default     = "text"
}

variable "package" {
  description = "Install the latency-pair .deb from the artifact bucket instead of git_url / container_image: the bucket, the manifest's key, the package's key. The instance role may read exactly these objects."
  type = object({
    bucket       = string
    manifest_key = string
    package_key  = string
  })
  default = null
}

variable "secrets" {
  description = "Package installs only: SSM parameter names (SecureString) of the agents' TLS material: cert/key (gRPC echo over TLS; IP SANs for every agent's private_ip), client_ca (mTLS: only certificates it signed, the server's, may call). The role may read exactly these."
  type = object({
    cert      = optional(string)
    key       = optional(string)
    client_ca = optional(string)
  })
  default = null
}

variable "permissions_boundary" {
  description = "ARN of a managed policy set as the permissions boundary of the instance role this module creates (null: none)."
  type        = string
  default     = null
}

variable "install_ssm_agent" {
  description = "Install the SSM agent at boot so Session Manager works (Debian's AMIs do not ship it)."
  type        = bool
  default     = true
}

variable "iam_instance_profile" {
  description = "Existing instance profile to attach. null creates one whose role may do only what the instance does: Session Manager (minimal policy), s3:GetObject on its artifacts, ssm:PutParameter on its status parameter. A given profile needs those permissions itself."
  type        = string
  default     = null
}

variable "key_name" {
  description = "EC2 key pair for SSH. Only needed with ssh_cidrs; Session Manager needs no key."
  type        = string
  default     = null
}

variable "ssh_cidrs" {
  description = "IPv4 CIDRs allowed to reach port 22. Empty (the default) opens no SSH at all; use Session Manager."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.ssh_cidrs : can(cidrhost(c, 0)) && try(cidrhost(c, 0) == split("/", c)[0], false) && !strcontains(c, ":")])
    error_message = "ssh_cidrs must be IPv4 network addresses in CIDR notation, for example 203.0.113.7/32."
  }

  validation {
    condition     = alltrue([for c in var.ssh_cidrs : try(tonumber(split("/", c)[1]) >= 8, false)])
    error_message = "SSH must not be open to the world: every ssh_cidrs entry needs a prefix of /8 or longer (0.0.0.0/0 is never allowed)."
  }

  validation {
    condition     = length(var.ssh_cidrs) == 0 || var.key_name != null
    error_message = "ssh_cidrs needs key_name: the Debian AMI accepts SSH keys only."
  }
}

variable "bootstrap_egress_cidrs" {
  description = "IPv4 CIDRs the agents may reach on TCP 80/443 (Debian mirrors, git, container registry, SSM). Narrow it when a proxy or VPC endpoints serve these."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.bootstrap_egress_cidrs : can(cidrhost(c, 0)) && try(cidrhost(c, 0) == split("/", c)[0], false) && !strcontains(c, ":")])
    error_message = "bootstrap_egress_cidrs must be IPv4 network addresses in CIDR notation."
  }
}

variable "associate_public_ip_address" {
  description = "Give each agent a public IPv4 address: the way out to the internet in a public subnet without NAT. Inbound traffic is still limited by the security group."
  type        = bool
  default     = true
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume in GiB (the source build needs about 10)."
  type        = number
  default     = 16

  validation {
    condition     = var.root_volume_size == floor(var.root_volume_size) && var.root_volume_size >= 8 && var.root_volume_size <= 1024
    error_message = "root_volume_size must be a whole number of GiB between 8 and 1024."
  }
}

variable "root_volume_kms_key_id" {
  description = "KMS key ARN for root volume encryption. null uses the account's default EBS key (aws/ebs); volumes are encrypted either way."
  type        = string
  default     = null

  validation {
    condition     = var.root_volume_kms_key_id == null || can(regex("^arn:aws[a-z-]*:kms:", var.root_volume_kms_key_id))
    error_message = "root_volume_kms_key_id must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
