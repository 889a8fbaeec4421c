variable "name" {
  description = "Name prefix of every resource (the security group, role, instance and status parameter)."
  type        = string
}

variable "vpc_id" {
  description = "VPC of the Prometheus host and of the metrics servers it scrapes."
  type        = string
}

variable "subnet_id" {
  description = "Subnet of the Prometheus host (it needs a way out on HTTPS: Debian's mirror, SSM, the EC2 API)."
  type        = string
}

variable "ami_id" {
  description = "Debian 12 AMI of the host (the root module passes the metrics server's)."
  type        = string
}

variable "instance_type" {
  description = "Instance type: Prometheus' memory grows with the series scraped (a few KB each)."
  type        = string
  default     = "t3.small"
}

variable "root_volume_size" {
  description = "Size of the encrypted gp3 root volume in GiB, which holds the TSDB."
  type        = number
  default     = 20
}

variable "retention" {
  description = "How long Prometheus keeps samples (--storage.tsdb.retention.time)."
  type        = string
  default     = "15d"

  validation {
    condition     = can(regex("^[0-9]+(h|d|w|y)$", var.retention))
    error_message = "retention must be a Prometheus duration such as 15d, 4w or 720h."
  }
}

variable "scrape_interval" {
  description = "How often every metrics server is scraped."
  type        = string
  default     = "15s"

  validation {
    condition     = can(regex("^[0-9]+(s|m)$", var.scrape_interval))
    error_message = "scrape_interval must be a Prometheus duration such as 15s or 1m."
  }
}

variable "ec2_sd_filters" {
  description = "EC2 filters (ec2_sd_configs) that select the metrics servers to scrape: by default every instance tagged Role = metrics-server in the region; the root module adds its own LatencyPair tag."
  type        = map(list(string))
  default     = { "tag:Role" = ["metrics-server"] }
}

variable "scrape_port" {
  description = "Port of the metrics servers' HTTP gateway (GET /metrics?format=prometheus)."
  type        = number
  default     = 5000
}

variable "scrape_security_group_ids" {
  description = "Security groups of the metrics servers: each admits this host on scrape_port, and this host may reach them there only."
  type        = list(string)
  default     = []
}

variable "tls_ca_parameter" {
  description = "SSM parameter (SecureString or String) holding the PEM CA that signed the metrics servers' certificates: when set, scrapes use HTTPS and verify them."
  type        = string
  default     = null
}

variable "auth_token_parameter" {
  description = "SSM SecureString holding the metrics servers' bearer token: when set, every scrape sends it."
  type        = string
  default     = null
}

variable "rule_files" {
  description = "Prometheus rule files to load, file name => YAML (the root module passes infra/prometheus/*.rules.yml)."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for name in keys(var.rule_files) : can(regex("^[A-Za-z0-9_.-]+\\.ya?ml$", name))])
    error_message = "rule_files keys must be plain file names ending in .yml or .yaml."
  }
}

variable "allowed_cidrs" {
  description = "IPv4 CIDRs that may reach Prometheus' web UI and API on TCP 9090 (it has no authentication of its own). Empty (the default): reach it through Session Manager port forwarding only."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.allowed_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "allowed_cidrs must be IPv4 CIDRs, never 0.0.0.0/0: Prometheus serves its data unauthenticated."
  }
}

variable "bootstrap_egress_cidrs" {
  description = "IPv4 CIDRs the host may reach on TCP 443 (Debian's mirror, SSM, the EC2 API for discovery)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "associate_public_ip_address" {
  description = "Give the host a public IPv4 address (its way out in a public subnet without NAT)."
  type        = bool
  default     = true
}

variable "install_ssm_agent" {
  description = "Install the SSM agent (Session Manager is the way in: no SSH, port 9090 forwarded through it)."
  type        = bool
  default     = true
}

variable "permissions_boundary" {
  description = "ARN of a permissions boundary for the host's role."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}
