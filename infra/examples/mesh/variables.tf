variable "region" {
  description = "AWS Region to deploy in."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region must be an AWS Region name such as us-east-1."
  }
}

variable "allowed_cidrs" {
  description = "Required. IPv4 CIDRs allowed to reach every member's /metrics and gRPC, e.g. [\"203.0.113.7/32\"] (your address: curl https://checkip.amazonaws.com)."
  type        = list(string)
}

variable "package_path" {
  description = "The latency-pair .deb to deploy (the default way: build/latency-pair_VERSION_amd64.deb from `cpack -G DEB`). Set exactly one of package_path, git_url and container_image."
  type        = string
  default     = null
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair repository to build on every member (slow: 10-25 minutes at boot). Set exactly one of package_path, git_url and container_image."
  type        = string
  default     = null
}

variable "git_ref" {
  description = "Branch, tag or commit SHA of git_url to build."
  type        = string
  default     = "main"
}

variable "container_image" {
  description = "Container image with both binaries, instead of building from source."
  type        = string
  default     = null
}

variable "member_count" {
  description = "With members null: how many members, one per Availability Zone in the region's first zones that need no opt-in, each named after its zone (us-east-1a, ...)."
  type        = number
  default     = 3

  validation {
    condition     = var.member_count == floor(var.member_count) && var.member_count >= 2 && var.member_count <= 6
    error_message = "member_count must be a whole number from 2 to 6 (one member per zone; no region has more than six). For more members, or several per zone, list them in members."
  }
}

variable "members" {
  description = "The members, keyed by name, instead of member_count: availability_zone (required), instance_type and private_ip (optional), e.g. { web-1 = { availability_zone = \"us-east-1a\" }, web-2 = { availability_zone = \"us-east-1b\" } }. 2 to 20 members (modules/mesh validates them)."
  type = map(object({
    availability_zone = string
    instance_type     = optional(string)
    private_ip        = optional(string)
  }))
  default = null
}

variable "prometheus_host" {
  description = "Also run a Prometheus host that discovers every member by tag, scrapes them and loads the repository's rules (about $0.028/h more)."
  type        = bool
  default     = false
}
