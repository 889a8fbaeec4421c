################################################################################
# Members
################################################################################

variable "members" {
  description = <<-EOT
    Required. The mesh members, keyed by name (2 to 20): each runs latency-agent and
    latency-server, and its server probes every other member by ICMP and gRPC with source = its
    name. Per member: availability_zone (required), instance_type (null: member_instance_type),
    private_ip (null: the zone subnet's 10th, 11th, ... address, in name order among the zone's
    members; pin it to add a member to a zone without moving the ones after it).
  EOT
  type = map(object({
    availability_zone = string
    instance_type     = optional(string)
    private_ip        = optional(string)
  }))

  validation {
    condition     = length(var.members) >= 2 && length(var.members) <= 20
    error_message = "A mesh has between 2 and 20 members: each probes every other one, so 20 means 380 probed paths per probe kind."
  }

  validation {
    condition     = alltrue([for name in keys(var.members) : can(regex("^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$", name))])
    error_message = "Member names must be 1-32 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit (each is a target name and a source)."
  }

  validation {
    condition     = alltrue([for m in values(var.members) : can(regex("^[a-z]{2}(-[a-z0-9]+)+[a-z]$", m.availability_zone))])
    error_message = "Every availability_zone must be an Availability Zone name such as us-east-1b."
  }

  validation {
    condition     = alltrue([for m in values(var.members) : m.instance_type == null || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", m.instance_type))])
    error_message = "Every instance_type must be an EC2 instance type such as t3.small."
  }

  validation {
    condition     = alltrue([for m in values(var.members) : m.private_ip == null || can(regex("^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$", m.private_ip))])
    error_message = "Every private_ip must be an IPv4 address."
  }
}

variable "member_instance_type" {
  description = "Default EC2 instance type of the members (each runs both programs; t3.small is about $0.021/h in us-east-1)."
  type        = string
  default     = "t3.small"
}

variable "elastic_ips" {
  description = "Give every member an Elastic IP (about $0.005/h each), so its metrics URL and gRPC address survive a replacement."
  type        = bool
  default     = false
}

variable "architecture" {
  description = "CPU architecture of the Debian 12 AMI: x86_64, or arm64 for Graviton types. All instance types must match it."
  type        = string
  default     = "x86_64"
}

variable "ami_id" {
  description = "AMI for every member. null looks up the newest official Debian 12 AMI at the first apply and keeps it (see follow_new_amis)."
  type        = string
  default     = null
}

variable "follow_new_amis" {
  description = "With ami_id null: true replaces the members whenever a newer Debian 12 AMI appears at an apply (losing their in-memory statistics); false keeps each member's first."
  type        = bool
  default     = false
}

################################################################################
# Access
################################################################################

variable "allowed_cidrs" {
  description = "Required. IPv4 CIDRs allowed to reach every member's HTTP (/metrics) and gRPC query ports, for example [\"203.0.113.7/32\"]. Ranges broader than /8, 0.0.0.0/0 included, need allow_public_access = true."
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
  description = "Accept allowed_cidrs entries broader than /8, 0.0.0.0/0 included. Requires tls and auth_token_parameter."
  type        = bool
  default     = false

  validation {
    condition     = !var.allow_public_access || (var.tls != null && var.auth_token_parameter != null)
    error_message = "allow_public_access = true needs tls and auth_token_parameter: the endpoints would otherwise serve the internet in plaintext, unauthenticated."
  }
}

variable "tls" {
  description = "Switch on TLS everywhere (package_path installs): names of SSM parameters (SecureString) with PEM material. ca signed the certificates; cert/key is every member's certificate, serving its agent (IP SANs: every member's private_ip, output member_private_ips) and its query API and HTTP gateway (SANs: the names or Elastic IPs users reach); probe_cert/probe_key, when set, are the servers' client certificate and make the agents require it (mTLS)."
  type = object({
    ca_parameter         = string
    cert_parameter       = string
    key_parameter        = string
    probe_cert_parameter = optional(string)
    probe_key_parameter  = optional(string)
  })
  default = null

  validation {
    condition     = var.tls == null || var.package_path != null
    error_message = "tls needs package_path: the source and container installs take no TLS material from Terraform."
  }

  validation {
    condition     = try((var.tls.probe_cert_parameter == null) == (var.tls.probe_key_parameter == null), true)
    error_message = "Set both tls.probe_cert_parameter and tls.probe_key_parameter (mTLS), or neither."
  }
}

variable "auth_token_parameter" {
  description = "Name of an SSM parameter (SecureString) holding the bearer token every member's query API and HTTP gateway then require (package_path installs)."
  type        = string
  default     = null

  validation {
    condition     = var.auth_token_parameter == null || var.package_path != null
    error_message = "auth_token_parameter needs package_path."
  }
}

variable "ssh_cidrs" {
  description = "IPv4 CIDRs allowed to reach port 22 on every member. Empty (the default) opens no SSH at all: use Session Manager. Needs key_name."
  type        = list(string)
  default     = []
}

variable "key_name" {
  description = "Existing EC2 key pair for SSH; only used together with ssh_cidrs."
  type        = string
  default     = null
}

################################################################################
# Software
################################################################################

variable "package_path" {
  description = "Path of the latency-pair .deb to deploy: uploaded to a private bucket, fetched and installed by each member with its own role; a new file upgrades the members in place. Exactly one of package_path, git_url and container_image must be set."
  type        = string
  default     = null

  validation {
    condition     = var.package_path == null || strcontains(try(basename(var.package_path), ""), var.architecture == "arm64" ? "_arm64.deb" : "_amd64.deb")
    error_message = "package_path must be a package for the instances' architecture: latency-pair_VERSION_amd64.deb for x86_64, _arm64.deb for arm64."
  }
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair repository to build from source on each member (10-25 minutes at boot). Exactly one of package_path, git_url and container_image must be set."
  type        = string
  default     = null

  validation {
    condition     = length([for v in [var.package_path, var.git_url, var.container_image] : v if v != null]) == 1
    error_message = "Set exactly one of package_path (the .deb you built: the default way), git_url (build from source on each member) and container_image (run a prebuilt image)."
  }
}

variable "git_ref" {
  description = "Branch, tag or full commit SHA of git_url to build."
  type        = string
  default     = "main"
}

variable "container_image" {
  description = "Container image holding both binaries, e.g. ghcr.io/org/latency-pair:1.0.0: each member runs the agent and the server from it on the host network."
  type        = string
  default     = null
}

variable "permissions_boundary" {
  description = "ARN of a managed policy to set as the permissions boundary of the roles this module creates."
  type        = string
  default     = null
}

variable "install_ssm_agent" {
  description = "Install the AWS SSM agent at boot so Session Manager works (Debian's AMIs do not ship it)."
  type        = bool
  default     = true
}

################################################################################
# Service settings
################################################################################

variable "agent_grpc_port" {
  description = "TCP port of every member's gRPC echo service (latency-agent --listen): the only TCP port members reach on each other."
  type        = number
  default     = 50051

  validation {
    condition     = !contains([var.server_grpc_port, var.server_http_port, 22], var.agent_grpc_port)
    error_message = "agent_grpc_port must differ from server_grpc_port, server_http_port and 22: both programs listen on every member."
  }
}

variable "server_grpc_port" {
  description = "TCP port of every member's gRPC query service (latency-server --grpc_listen; latencyctl matrix asks it)."
  type        = number
  default     = 50052
}

variable "server_http_port" {
  description = "TCP port of every member's HTTP/JSON gateway serving /metrics (latency-server --http_listen), which Prometheus scrapes."
  type        = number
  default     = 5000
}

variable "probe_interval" {
  description = "Probe interval per target (latency-server --interval): a whole number with ms, s or m, at least 100ms."
  type        = string
  default     = "1s"
}

variable "log_level" {
  description = "--log_level of both programs: trace, debug, info, warn, error, critical or off."
  type        = string
  default     = "info"
}

variable "log_format" {
  description = "--log_format of the agents: text or json."
  type        = string
  default     = "text"
}

################################################################################
# Network, storage, tags
################################################################################

variable "name" {
  description = "Name of this mesh: prefix of every resource name and Name tag, and the LatencyPair tag Prometheus discovers the members by. Unique per account and region."
  type        = string
  default     = "latency-mesh"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (/16 to /19); each Availability Zone in use gets a public subnet 8 bits smaller, numbered in the order of the zones' names."
  type        = string
  default     = "10.42.0.0/16"
}

variable "bootstrap_egress_cidrs" {
  description = "IPv4 CIDRs every instance may reach on TCP 443 (S3, SSM, Debian mirror, registry), and TCP 80 for a source build. Narrow it when a proxy or VPC endpoints serve these."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "root_volume_size" {
  description = "Size in GiB of each member's encrypted gp3 root volume (the source build needs about 10)."
  type        = number
  default     = 16
}

variable "root_volume_kms_key_id" {
  description = "KMS key ARN for the root volumes. null uses the account's default EBS key (aws/ebs); the volumes are encrypted either way."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags added to every resource, on top of Project = latency-pair and ManagedBy = terraform."
  type        = map(string)
  default     = {}
}

################################################################################
# Prometheus
################################################################################

variable "prometheus_host" {
  description = "Also run a Prometheus host that discovers every member by its tags (Role = metrics-server, LatencyPair = name), scrapes them and loads infra/prometheus's rules: the source x target matrix over time."
  type        = bool
  default     = false
}

variable "prometheus_instance_type" {
  description = "Instance type of the Prometheus host."
  type        = string
  default     = "t3.small"
}

variable "prometheus_allowed_cidrs" {
  description = "IPv4 CIDRs that may reach the Prometheus host's UI and API on TCP 9090 (unauthenticated; never 0.0.0.0/0). Empty: Session Manager port forwarding only."
  type        = list(string)
  default     = []
}
