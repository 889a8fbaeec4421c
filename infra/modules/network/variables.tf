variable "name" {
  description = "Name prefix for every resource (Name tags)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR block of the VPC, /16 to /24 (for example 10.42.0.0/16)."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition = (
      can(cidrhost(var.cidr_block, 0)) &&
      try(cidrhost(var.cidr_block, 0) == split("/", var.cidr_block)[0], false) &&
      try(tonumber(split("/", var.cidr_block)[1]) >= 16 && tonumber(split("/", var.cidr_block)[1]) <= 24, false) &&
      !strcontains(var.cidr_block, ":")
    )
    error_message = "cidr_block must be an IPv4 network address with a prefix length between /16 and /24, for example 10.42.0.0/16."
  }
}

variable "availability_zones" {
  description = "Availability Zones to create one public subnet in each (for example [\"us-east-1a\", \"us-east-1b\"]). Subnet CIDRs follow list order: append new zones at the end to keep existing subnets."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 1 && length(var.availability_zones) == length(distinct(var.availability_zones))
    error_message = "availability_zones must list at least one zone, without duplicates."
  }

  validation {
    condition     = alltrue([for az in var.availability_zones : can(regex("^[a-z]{2}(-[a-z0-9]+)+[a-z]$", az))])
    error_message = "Every entry must be an Availability Zone name such as us-east-1a."
  }
}

variable "subnet_newbits" {
  description = "Bits added to the VPC prefix for each public subnet (8 turns a /16 into /24 subnets)."
  type        = number
  default     = 8

  validation {
    condition     = var.subnet_newbits == floor(var.subnet_newbits) && var.subnet_newbits >= 1 && try(tonumber(split("/", var.cidr_block)[1]) + var.subnet_newbits <= 28, false)
    error_message = "subnet_newbits must be a positive integer and the resulting subnets no smaller than /28 (the AWS minimum)."
  }

  validation {
    condition     = pow(2, var.subnet_newbits) >= length(var.availability_zones)
    error_message = "subnet_newbits is too small to give every Availability Zone its own subnet."
  }
}

variable "tags" {
  description = "Tags added to every resource."
  type        = map(string)
  default     = {}
}
