variable "name" {
  description = "Name of the deployment: the bucket's name prefix (NAME-artifacts-) and Name tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.name))
    error_message = "name must be 2-24 characters: lower-case letters, digits and '-', starting with a letter and not ending with '-'."
  }
}

variable "package_path" {
  description = "Path of the latency-pair .deb to upload (the callers check its architecture)."
  type        = string

  validation {
    condition     = try(endswith(var.package_path, ".deb") && fileexists(var.package_path), false)
    error_message = "package_path must name an existing .deb file."
  }
}

variable "configs" {
  description = "Server configs to upload, object key => content (latency.v1.ServerConfig text proto), e.g. { \"config/server.textproto\" = ... }. Keys known at plan; contents may be computed."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.configs) : can(regex("^config/[A-Za-z0-9][A-Za-z0-9._-]{0,200}\\.textproto$", k))])
    error_message = "configs keys must look like config/NAME.textproto (letters, digits and ._- in NAME)."
  }
}

variable "tags" {
  description = "Tags of the bucket and its objects."
  type        = map(string)
  default     = {}
}
