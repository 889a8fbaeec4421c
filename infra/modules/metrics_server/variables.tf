variable "name" {
  description = "Name prefix for every resource (Name tags, security group and IAM name prefixes)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "instance_name" {
  description = "Name of this server within the deployment (name): its Name tag and name prefix are NAME-INSTANCE_NAME, its status parameter /NAME/status/INSTANCE_NAME. A mesh names each member member-KEY."
  type        = string
  default     = "server"

  validation {
    condition     = can(regex("^[a-z0-9]([a-z0-9_-]{0,38}[a-z0-9])?$", var.instance_name))
    error_message = "instance_name must be 1-40 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit."
  }
}

variable "run_agent" {
  description = "Also run latency-agent on this host, on agent_grpc_port (a mesh member: the other members probe it). Its ingress comes from additional_security_group_ids (a mesh's self-referencing group); this module's own group admits no probes."
  type        = bool
  default     = false
}

variable "vantage_point" {
  description = "Where this server measures from (latency-server --source): the `source` label of every metric and `source` in API answers, e.g. a mesh member's name or an Availability Zone. null: the host name."
  type        = string
  default     = null
}

variable "log_format" {
  description = "With run_agent: latency-agent's --log_format, text or json."
  type        = string
  default     = "text"
}

variable "private_ip" {
  description = "Pin the server's private IPv4 address inside subnet_id (a mesh pins its members so each can list the others before any exists). null: AWS picks one."
  type        = string
  default     = null

  validation {
    condition     = var.private_ip == null || can(regex("^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$", var.private_ip))
    error_message = "private_ip must be an IPv4 address."
  }
}

variable "additional_security_group_ids" {
  description = "Security groups attached to the server besides its own (a mesh's self-referencing group, which admits the other members' probes of this host's agent)."
  type        = list(string)
  default     = []
}

variable "vpc_id" {
  description = "ID of the VPC the metrics server's security group belongs to."
  type        = string
}

variable "subnet_id" {
  description = "ID of the (public) subnet to launch the metrics server in; it picks the server's Availability Zone."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the metrics server."
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

variable "elastic_ip" {
  description = "Give the server an Elastic IP, so its public address (and metrics_url) stays the same when the instance is replaced."
  type        = bool
  default     = false
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

variable "allowed_cidrs" {
  description = "IPv4 CIDRs allowed to reach the metrics server's HTTP (/metrics) and gRPC ports, for example [\"203.0.113.7/32\"]. Ranges broader than /8, 0.0.0.0/0 included, need allow_public_access = true."
  type        = list(string)

  validation {
    condition     = length(var.allowed_cidrs) >= 1 && alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && try(cidrhost(c, 0) == split("/", c)[0], false) && !strcontains(c, ":")])
    error_message = "allowed_cidrs must list at least one IPv4 network address in CIDR notation, for example 203.0.113.7/32 (a host address needs /32)."
  }

  validation {
    condition     = var.allow_public_access || alltrue([for c in var.allowed_cidrs : try(tonumber(split("/", c)[1]) >= 8, false)])
    error_message = "allowed_cidrs opens /metrics and gRPC to the internet (0.0.0.0/0 or a range broader than /8). Use your own address, e.g. 203.0.113.7/32, or set allow_public_access = true to accept that on purpose."
  }
}

variable "allow_public_access" {
  description = "Accept allowed_cidrs entries broader than /8, 0.0.0.0/0 included (the metrics endpoints have no authentication)."
  type        = bool
  default     = false
}

variable "http_port" {
  description = "TCP port of the HTTP/JSON gateway (/metrics)."
  type        = number
  default     = 5000

  validation {
    condition     = var.http_port == floor(var.http_port) && var.http_port >= 1 && var.http_port <= 65535 && var.http_port != 22 && var.http_port != var.grpc_port
    error_message = "http_port must be an integer between 1 and 65535, not 22 and different from grpc_port."
  }
}

variable "grpc_port" {
  description = "TCP port of the gRPC query service."
  type        = number
  default     = 50052

  validation {
    condition     = var.grpc_port == floor(var.grpc_port) && var.grpc_port >= 1 && var.grpc_port <= 65535 && var.grpc_port != 22
    error_message = "grpc_port must be an integer between 1 and 65535 (and not 22)."
  }
}

variable "agent_security_group_id" {
  description = "Security group of the agents: the only destination of the server's ICMP and gRPC probes."
  type        = string
}

variable "agent_grpc_port" {
  description = "TCP port the agents serve gRPC echo on (egress rule towards the agents; with run_agent, this host's agent listens on it too)."
  type        = number
  default     = 50051

  validation {
    condition     = var.agent_grpc_port == floor(var.agent_grpc_port) && var.agent_grpc_port >= 1 && var.agent_grpc_port <= 65535
    error_message = "agent_grpc_port must be an integer between 1 and 65535."
  }
}

variable "targets" {
  description = "Agents to probe, in order: the first is the one /metrics reports as latency_ms. host is the agent's private IP (or DNS name); port defaults to 50051."
  type = list(object({
    name = string
    host = string
    port = optional(number, 50051)
  }))

  validation {
    condition     = length(var.targets) >= 1
    error_message = "The metrics server needs at least one target."
  }
}

variable "probe_interval" {
  description = "Probe interval per target (latency-server --interval): a duration such as 1s or 500ms, at least 100ms."
  type        = string
  default     = "1s"
}

variable "log_level" {
  description = "latency-server --log_level: trace, debug, info, warn, error, critical or off."
  type        = string
  default     = "info"
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
  description = "Container image with both binaries; when set, the server runs it with docker instead of building from source."
  type        = string
  default     = null
}

variable "package" {
  description = "Install the latency-pair .deb from the artifact bucket instead of git_url / container_image: the bucket, the manifest's key, the package's key and the server config's key. The instance role may read exactly these objects."
  type = object({
    bucket       = string
    manifest_key = string
    package_key  = string
    config_key   = string
  })
  default = null
}

variable "secrets" {
  description = "Package installs only: SSM parameter names (SecureString) of the server's TLS material and token: cert/key (query API and HTTP gateway; with run_agent, the agent's gRPC echo too), ca (verifies the agents), client_cert/client_key (the prober's mTLS certificate), client_ca (with run_agent: the agent accepts only callers it signed), token (bearer token of both surfaces). The role may read exactly these."
  type = object({
    ca          = optional(string)
    cert        = optional(string)
    key         = optional(string)
    client_cert = optional(string)
    client_key  = optional(string)
    client_ca   = optional(string)
    token       = optional(string)
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
  description = "IPv4 CIDRs allowed to reach port 22 of the metrics server. Empty (the default) opens no SSH at all; use Session Manager."
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
  description = "IPv4 CIDRs the metrics server may reach on TCP 80/443 (Debian mirrors, git, container registry, SSM). Narrow it when a proxy or VPC endpoints serve these."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.bootstrap_egress_cidrs : can(cidrhost(c, 0)) && try(cidrhost(c, 0) == split("/", c)[0], false) && !strcontains(c, ":")])
    error_message = "bootstrap_egress_cidrs must be IPv4 network addresses in CIDR notation."
  }
}

variable "associate_public_ip_address" {
  description = "Give the metrics server a public IPv4 address: where users reach /metrics and gRPC (from allowed_cidrs only), and its way out to the internet without NAT."
  type        = bool
  default     = true
}

variable "placement_group" {
  description = "Name of an existing placement group to launch the server in (for example a cluster placement group shared with same-AZ agents)."
  type        = string
  default     = null
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
