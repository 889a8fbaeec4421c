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
  description = "Required. IPv4 CIDRs allowed to reach /metrics and gRPC, e.g. [\"203.0.113.7/32\"] (your address: curl https://checkip.amazonaws.com)."
  type        = list(string)
}

variable "package_path" {
  description = "The latency-pair .deb to deploy (the default way: build/latency-pair_VERSION_amd64.deb from `cpack -G DEB`). Set exactly one of package_path, git_url and container_image."
  type        = string
  default     = null
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair repository to build on the instances (slow: 10-25 minutes at boot). Set exactly one of package_path, git_url and container_image."
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

variable "availability_zones" {
  description = "Two Availability Zones: [server and same-AZ agent, cross-AZ agent]. null takes the region's first two zones that need no opt-in."
  type        = list(string)
  default     = null

  validation {
    condition     = var.availability_zones == null || try(length(var.availability_zones) == 2 && var.availability_zones[0] != var.availability_zones[1], false)
    error_message = "availability_zones must list two different zones, e.g. [\"us-east-1a\", \"us-east-1b\"]."
  }
}
