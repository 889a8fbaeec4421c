variable "region" {
  description = "AWS region whose instances ec2_sd_configs lists."
  type        = string
}

variable "ec2_sd_filters" {
  description = "EC2 filters selecting the metrics servers."
  type        = map(list(string))
}

variable "scrape_port" {
  description = "HTTP gateway port of the metrics servers."
  type        = number
}

variable "scrape_interval" {
  description = "Prometheus' scrape and rule evaluation interval."
  type        = string
}

variable "retention" {
  description = "--storage.tsdb.retention.time."
  type        = string
}

variable "rule_files" {
  description = "Rule files: file name => YAML."
  type        = map(string)
  default     = {}
}

variable "tls_ca_parameter" {
  description = "SSM parameter holding the CA of the metrics servers' certificates (HTTPS scrapes), or null."
  type        = string
  default     = null

  validation {
    condition     = var.tls_ca_parameter == null || can(regex("^/?[A-Za-z0-9_./-]{1,1000}$", var.tls_ca_parameter))
    error_message = "tls_ca_parameter must be an SSM parameter name ([A-Za-z0-9_./-])."
  }
}

variable "auth_token_parameter" {
  description = "SSM parameter holding the bearer token the scrapes send, or null."
  type        = string
  default     = null

  validation {
    condition     = var.auth_token_parameter == null || can(regex("^/?[A-Za-z0-9_./-]{1,1000}$", var.auth_token_parameter))
    error_message = "auth_token_parameter must be an SSM parameter name ([A-Za-z0-9_./-])."
  }
}

variable "status_parameter" {
  description = "SSM parameter the boot script reports to."
  type        = string

  validation {
    condition     = can(regex("^/[A-Za-z0-9_./-]{1,1000}$", var.status_parameter))
    error_message = "status_parameter must be an SSM parameter name starting with /."
  }
}

variable "install_ssm_agent" {
  description = "Install the SSM agent."
  type        = bool
  default     = true
}
