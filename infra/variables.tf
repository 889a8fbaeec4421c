################################################################################
# Access
################################################################################

variable "allowed_cidrs" {
  description = "Required. IPv4 CIDRs allowed to reach the metrics server's HTTP (/metrics) and gRPC ports, for example [\"203.0.113.7/32\"] (your address: curl https://checkip.amazonaws.com). Ranges broader than /8, 0.0.0.0/0 included, need allow_public_access = true."
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
}

variable "tls" {
  description = "Switch on TLS everywhere (package_path installs): names of SSM parameters (SecureString) holding PEM material, which each instance role may read by exact ARN and the instances copy to /etc/latency-pair/tls/ (root:latency-pair 0640), re-read every minute (rotate by updating a parameter). ca signed the certificates; server_cert/server_key serve the query API and the HTTP gateway (SANs: the address users reach, e.g. the Elastic IP or a DNS name); agent_cert/agent_key serve the agents' gRPC echo (IP SANs for every agent's private_ip, so pin them in agents); probe_cert/probe_key, when set, are the server's client certificate and make the agents require it (mTLS)."
  type = object({
    ca_parameter          = string
    server_cert_parameter = string
    server_key_parameter  = string
    agent_cert_parameter  = string
    agent_key_parameter   = string
    probe_cert_parameter  = optional(string)
    probe_key_parameter   = optional(string)
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

  validation {
    condition     = var.tls == null || alltrue([for agent in values(var.agents) : agent.private_ip != null])
    error_message = "With tls, pin every agent's private_ip (agents.NAME.private_ip): the server verifies each agent's certificate against the address it probes, so the agent certificate needs those IP SANs."
  }
}

variable "auth_token_parameter" {
  description = "Name of an SSM parameter (SecureString) holding the bearer token the query API and the HTTP gateway then require (package_path installs; re-read every minute). Clients send Authorization: Bearer TOKEN; health checks stay open."
  type        = string
  default     = null

  validation {
    condition     = var.auth_token_parameter == null || var.package_path != null
    error_message = "auth_token_parameter needs package_path."
  }

  validation {
    condition     = !var.allow_public_access || (var.tls != null && var.auth_token_parameter != null)
    error_message = "allow_public_access = true needs tls and auth_token_parameter: the endpoints would otherwise serve the internet in plaintext, unauthenticated."
  }
}

variable "ssh_cidrs" {
  description = "IPv4 CIDRs allowed to reach port 22 on every instance. Empty (the default) opens no SSH at all: use Session Manager (aws ssm start-session). Needs key_name."
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

variable "key_name" {
  description = "Existing EC2 key pair for SSH; only used together with ssh_cidrs."
  type        = string
  default     = null

  validation {
    condition     = var.key_name == null || try(length(var.key_name) >= 1 && length(var.key_name) <= 255, false)
    error_message = "key_name must be the name of an existing EC2 key pair (1-255 characters)."
  }
}

################################################################################
# Placement
################################################################################

variable "server_availability_zone" {
  description = "Availability Zone of the metrics server, for example us-east-1a. null takes the region's first zone that needs no opt-in."
  type        = string
  default     = null

  validation {
    condition     = var.server_availability_zone == null || can(regex("^[a-z]{2}(-[a-z0-9]+)+[a-z]$", var.server_availability_zone))
    error_message = "server_availability_zone must be an Availability Zone name such as us-east-1a."
  }
}

variable "agents" {
  description = <<-EOT
    Agents to launch, keyed by name (the name the metrics server reports). Per agent, all optional:
    availability_zone (null: the server's zone, i.e. same-AZ; another zone: cross-AZ),
    instance_type (null: agent_instance_type),
    placement_group (true: join a cluster placement group together with the server; same zone, non-burstable types),
    private_ip (pin the agent's address inside its zone's subnet).
    The server probes agents in its own zone first, then the others, each group by name; /metrics latency_ms is the first.
  EOT
  type = map(object({
    availability_zone = optional(string)
    instance_type     = optional(string)
    placement_group   = optional(bool, false)
    private_ip        = optional(string)
  }))
  default = { same-az = {} }

  validation {
    condition     = length(var.agents) >= 1 && length(var.agents) <= 20
    error_message = "Launch between 1 and 20 agents."
  }

  validation {
    condition     = alltrue([for name in keys(var.agents) : can(regex("^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$", name))])
    error_message = "Agent names must be 1-32 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit."
  }

  validation {
    condition     = alltrue([for a in values(var.agents) : a.availability_zone == null || can(regex("^[a-z]{2}(-[a-z0-9]+)+[a-z]$", a.availability_zone))])
    error_message = "Every availability_zone must be an Availability Zone name such as us-east-1b."
  }

  validation {
    condition     = alltrue([for a in values(var.agents) : a.instance_type == null || can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", a.instance_type))])
    error_message = "Every instance_type must be an EC2 instance type such as t3.small."
  }

  validation {
    condition     = alltrue([for a in values(var.agents) : a.private_ip == null || can(regex("^(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}$", a.private_ip))])
    error_message = "Every private_ip must be an IPv4 address."
  }

  validation {
    condition     = length(distinct(compact([for a in values(var.agents) : a.private_ip]))) == length(compact([for a in values(var.agents) : a.private_ip]))
    error_message = "Two agents cannot pin the same private_ip."
  }
}

variable "agent_instance_type" {
  description = "Default EC2 instance type of the agents (about $0.021/h for t3.small in us-east-1)."
  type        = string
  default     = "t3.small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.agent_instance_type))
    error_message = "agent_instance_type must be an EC2 instance type such as t3.small."
  }
}

variable "server_instance_type" {
  description = "EC2 instance type of the metrics server."
  type        = string
  default     = "t3.small"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.server_instance_type))
    error_message = "server_instance_type must be an EC2 instance type such as t3.small."
  }
}

variable "architecture" {
  description = "CPU architecture of the Debian 12 AMI: x86_64, or arm64 for Graviton types (t4g, c7g...). All instance types must match it."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture must be x86_64 or arm64."
  }
}

variable "server_elastic_ip" {
  description = "Give the metrics server an Elastic IP (about $0.005/h), so metrics_url stays the same when the server is replaced."
  type        = bool
  default     = false
}

variable "follow_new_amis" {
  description = "With ami_id null: true replaces the instances whenever a newer official Debian 12 AMI appears at an apply (losing their in-memory statistics); false (the default) keeps the AMI each instance was created with."
  type        = bool
  default     = false
}

variable "ami_id" {
  description = "AMI for every instance. null looks up the newest official Debian 12 AMI (owner 136693071363) at the first apply and keeps it (see follow_new_amis). Changing it replaces the instances."
  type        = string
  default     = null

  validation {
    condition     = var.ami_id == null || can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "ami_id must be an AMI ID such as ami-0123456789abcdef0."
  }
}

################################################################################
# Software
################################################################################

variable "package_path" {
  description = "Path of the latency-pair .deb to deploy (`cpack -G DEB` in the build directory, see packaging/README.md). Terraform uploads it to a private S3 bucket it creates; each instance fetches it with its own role's credentials and installs it: serving about a minute after boot, no build, no developer tools on the measured hosts. A new file upgrades the running instances in place (their sync timer installs it within a minute). Exactly one of package_path, git_url and container_image must be set."
  type        = string
  default     = null

  validation {
    condition     = var.package_path == null || try(endswith(var.package_path, ".deb") && fileexists(var.package_path), false)
    error_message = "package_path must name an existing .deb file."
  }

  validation {
    condition     = var.package_path == null || strcontains(try(basename(var.package_path), ""), var.architecture == "arm64" ? "_arm64.deb" : "_amd64.deb")
    error_message = "package_path must be a package for the instances' architecture: latency-pair_VERSION_amd64.deb for x86_64, _arm64.deb for arm64."
  }
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair repository to build from source on each instance (10-25 minutes at boot, with the developer tool chain). Exactly one of package_path, git_url and container_image must be set."
  type        = string
  default     = null

  validation {
    condition     = var.git_url == null || can(regex("^https://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/[A-Za-z0-9._~%+@-]+)+/?$", var.git_url))
    error_message = "git_url must be an https:// URL made of letters, digits and ._~%+@- (for example https://github.com/org/latency-pair.git)."
  }

  validation {
    condition     = length([for v in [var.package_path, var.git_url, var.container_image] : v if v != null]) == 1
    error_message = "Set exactly one of package_path (the .deb you built: the default way), git_url (build from source on each instance) and container_image (run a prebuilt image)."
  }
}

variable "git_ref" {
  description = "Branch, tag or full commit SHA of git_url to build (a tag or SHA makes the build reproducible)."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", var.git_ref)) && !strcontains(var.git_ref, "..") && !endswith(var.git_ref, ".lock") && !endswith(var.git_ref, "/")
    error_message = "git_ref must be a git branch, tag or commit SHA: letters, digits and ._/- only, at most 128 characters, no \"..\"."
  }
}

variable "container_image" {
  description = "Container image holding both binaries, e.g. ghcr.io/org/latency-pair:1.0.0 (a @sha256: digest pins it). When set, instances install docker.io and run it on the host network instead of building from source."
  type        = string
  default     = null

  validation {
    condition     = var.container_image == null || can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.container_image))
    error_message = "container_image must look like REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], for example ghcr.io/org/latency-pair:1.0.0."
  }

  validation {
    condition     = var.container_image == null || alltrue([for p in [var.agent_grpc_port, var.server_grpc_port, var.server_http_port] : p >= 1024])
    error_message = "With container_image the services run as an unprivileged user in the container and cannot bind ports below 1024; choose ports >= 1024."
  }
}

variable "permissions_boundary" {
  description = "ARN of a managed policy to set as the permissions boundary of the instance roles this module creates (organisations that require one)."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/.+$", var.permissions_boundary))
    error_message = "permissions_boundary must be an IAM policy ARN such as arn:aws:iam::123456789012:policy/boundary."
  }
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
  description = "TCP port of the agents' gRPC echo service (latency-agent --listen)."
  type        = number
  default     = 50051

  validation {
    condition     = var.agent_grpc_port == floor(var.agent_grpc_port) && var.agent_grpc_port >= 1 && var.agent_grpc_port <= 65535 && var.agent_grpc_port != 22
    error_message = "agent_grpc_port must be an integer between 1 and 65535 (and not 22)."
  }
}

variable "server_grpc_port" {
  description = "TCP port of the metrics server's gRPC query service (latency-server --grpc_listen)."
  type        = number
  default     = 50052

  validation {
    condition     = var.server_grpc_port == floor(var.server_grpc_port) && var.server_grpc_port >= 1 && var.server_grpc_port <= 65535 && var.server_grpc_port != 22
    error_message = "server_grpc_port must be an integer between 1 and 65535 (and not 22)."
  }
}

variable "server_http_port" {
  description = "TCP port of the metrics server's HTTP/JSON gateway serving /metrics (latency-server --http_listen)."
  type        = number
  default     = 5000

  validation {
    condition     = var.server_http_port == floor(var.server_http_port) && var.server_http_port >= 1 && var.server_http_port <= 65535 && var.server_http_port != 22 && var.server_http_port != var.server_grpc_port
    error_message = "server_http_port must be an integer between 1 and 65535, not 22 and different from server_grpc_port."
  }
}

variable "probe_interval" {
  description = "Probe interval per target (latency-server --interval): a whole number with ms, s or m, at least 100ms."
  type        = string
  default     = "1s"

  validation {
    condition = can(regex("^[1-9][0-9]*(ms|s|m)$", var.probe_interval)) && (
      !endswith(var.probe_interval, "ms") || try(tonumber(trimsuffix(var.probe_interval, "ms")) >= 100, false)
    )
    error_message = "probe_interval must be a whole number followed by ms, s or m (for example 1s or 500ms), and at least 100ms."
  }
}

variable "log_level" {
  description = "--log_level of both services: trace, debug, info, warn, error, critical or off."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "critical", "off"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error, critical, off."
  }
}

variable "log_format" {
  description = "--log_format of the agents: text or json."
  type        = string
  default     = "text"

  validation {
    condition     = contains(["text", "json"], var.log_format)
    error_message = "log_format must be \"text\" or \"json\"."
  }
}

################################################################################
# Network, storage, tags
################################################################################

variable "name" {
  description = "Name of this deployment: prefix of every resource name and Name tag. Must be unique per account and region (the cluster placement group is named after it)."
  type        = string
  default     = "latency-pair"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the new VPC (/16 to /19); each Availability Zone in use gets a public subnet 8 bits smaller (a /24 of a /16)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.vpc_cidr, 0)) &&
      try(cidrhost(var.vpc_cidr, 0) == split("/", var.vpc_cidr)[0], false) &&
      try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 19, false) &&
      !strcontains(var.vpc_cidr, ":")
    )
    error_message = "vpc_cidr must be an IPv4 network address with a prefix length between /16 and /19, for example 10.42.0.0/16."
  }
}

variable "bootstrap_egress_cidrs" {
  description = "IPv4 CIDRs every instance may reach on TCP 80/443 for boot and management (Debian mirrors, git, registry, SSM). Narrow it when a proxy or VPC endpoints serve these."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = length(var.bootstrap_egress_cidrs) >= 1 && alltrue([for c in var.bootstrap_egress_cidrs : can(cidrhost(c, 0)) && try(cidrhost(c, 0) == split("/", c)[0], false) && !strcontains(c, ":")])
    error_message = "bootstrap_egress_cidrs must list IPv4 network addresses in CIDR notation."
  }
}

variable "root_volume_size" {
  description = "Size in GiB of each instance's encrypted gp3 root volume (the source build needs about 10)."
  type        = number
  default     = 16

  validation {
    condition     = var.root_volume_size == floor(var.root_volume_size) && var.root_volume_size >= 8 && var.root_volume_size <= 1024
    error_message = "root_volume_size must be a whole number of GiB between 8 and 1024."
  }
}

variable "root_volume_kms_key_id" {
  description = "KMS key ARN for the root volumes. null uses the account's default EBS key (aws/ebs); the volumes are encrypted either way."
  type        = string
  default     = null

  validation {
    condition     = var.root_volume_kms_key_id == null || can(regex("^arn:aws[a-z-]*:kms:", var.root_volume_kms_key_id))
    error_message = "root_volume_kms_key_id must be a KMS key ARN."
  }
}

variable "tags" {
  description = "Tags added to every resource, on top of Project = latency-pair and ManagedBy = terraform."
  type        = map(string)
  default     = {}
}

variable "prometheus_host" {
  description = "Also run a Prometheus host (Debian's prometheus) that finds this pair's metrics server by its tags (ec2_sd_configs), scrapes it (over HTTPS with the CA and the token when tls / auth_token_parameter are set) and loads infra/prometheus's recording and alerting rules. Its UI: Session Manager port forwarding (output prometheus_port_forward_command) or prometheus_allowed_cidrs."
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

  validation {
    condition     = alltrue([for c in var.prometheus_allowed_cidrs : can(cidrhost(c, 0)) && !strcontains(c, ":") && c != "0.0.0.0/0"])
    error_message = "prometheus_allowed_cidrs must be IPv4 CIDRs, never 0.0.0.0/0: Prometheus serves its data unauthenticated."
  }
}
