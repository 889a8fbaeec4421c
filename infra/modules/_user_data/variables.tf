variable "role" {
  description = "Which programs this host runs: `agent` (latency-agent), `server` (latency-server, the metrics server) or `member` (both: a mesh member, whose agent the other members probe and whose server probes them)."
  type        = string

  validation {
    condition     = contains(["agent", "server", "member"], var.role)
    error_message = "role must be \"agent\", \"server\" or \"member\"."
  }
}

variable "git_url" {
  description = "HTTPS URL of the latency-pair git repository to build from source. Exactly one of git_url and container_image must be set."
  type        = string
  default     = null

  validation {
    condition     = var.git_url == null || can(regex("^https://[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]+)?(/[A-Za-z0-9._~%+@-]+)+/?$", var.git_url))
    error_message = "git_url must be an https:// URL made of letters, digits and ._~%+@- (for example https://github.com/org/latency-pair.git)."
  }

  validation {
    condition     = length([for v in [var.git_url, var.container_image, var.package] : v if v != null]) == 1
    error_message = "Set exactly one of package (install the .deb from S3), git_url (build from source) and container_image (run a prebuilt image)."
  }
}

variable "git_ref" {
  description = "Branch, tag or full commit SHA of git_url to build."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$", var.git_ref)) && !strcontains(var.git_ref, "..") && !endswith(var.git_ref, ".lock") && !endswith(var.git_ref, "/")
    error_message = "git_ref must be a git branch, tag or commit SHA: letters, digits and ._/- only, at most 128 characters, no \"..\"."
  }
}

variable "container_image" {
  description = "Container image holding both binaries (for example ghcr.io/org/latency-pair:1.0.0, optionally @sha256:...). When set, docker.io runs it on the host network instead of building from source."
  type        = string
  default     = null

  validation {
    condition     = var.container_image == null || can(regex("^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)+(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$", var.container_image))
    error_message = "container_image must look like REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST], for example ghcr.io/org/latency-pair:1.0.0."
  }

  validation {
    # docker gives added capabilities to root only; the container runs as the service user.
    condition     = var.container_image == null || alltrue([for p in concat(var.role != "agent" ? [var.grpc_port, var.http_port] : [], var.role != "server" ? [var.agent_grpc_port] : []) : p >= 1024])
    error_message = "With container_image the service runs as an unprivileged user in the container and cannot bind ports below 1024; choose ports >= 1024."
  }
}

variable "package" {
  description = "Install the latency-pair .deb from this S3 bucket (the root module uploads it): the bucket's name, the key of the manifest (the package's key and SHA-256) and, for a server or member, the key of its config (server.textproto). A timer re-reads both every minute: a new package is installed, a new config reloaded in place (SIGHUP), so neither replaces the instance."
  type = object({
    bucket       = string
    manifest_key = string
    config_key   = optional(string)
  })
  default = null

  validation {
    # HCL does not short-circuit: try() stands for "or null".
    condition = try(
      can(regex("^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$", var.package.bucket)) &&
      alltrue([for k in compact([var.package.manifest_key, var.package.config_key]) : can(regex("^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$", k))]),
      var.package == null
    )
    error_message = "package.bucket must be an S3 bucket name without dots (virtual-hosted HTTPS) and its keys letters, digits and ._/- only."
  }

  validation {
    condition     = var.role == "agent" || try(var.package.config_key != null, var.package == null)
    error_message = "A server or member installed from the package needs package.config_key (its targets are delivered there)."
  }
}

variable "secrets" {
  description = "Package installs only: TLS material and the bearer token, as names of SSM parameters (SecureString) the boot script and the sync timer copy into /etc/latency-pair/tls/ (root:latency-pair 0640; a change is applied with a reload). Server: cert/key serve the query API and the HTTP gateway, ca verifies the agents, client_cert/client_key are the prober's mTLS certificate, token is the bearer token both surfaces require. Agent: cert/key serve gRPC echo; with client_ca, callers (the server) must present a certificate it signed. Member: both, with one cert/key for the three surfaces."
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

  validation {
    condition     = alltrue([for v in values(coalesce(var.secrets, {})) : v == null || can(regex("^/?[A-Za-z0-9_./-]{1,1000}$", v))])
    error_message = "secrets must be SSM parameter names (letters, digits and _./- only)."
  }

  validation {
    condition     = try(var.package != null, true) || var.secrets == null
    error_message = "secrets need the package install (package): the source and container installs take no TLS material."
  }

  validation {
    condition     = try((var.secrets.cert == null) == (var.secrets.key == null) && (var.secrets.client_cert == null) == (var.secrets.client_key == null), true)
    error_message = "A certificate and its key come together: set both cert and key (and both client_cert and client_key) or neither."
  }
}

variable "status_parameter" {
  description = "Name of an SSM parameter (String) the boot script and the package's sync timer write their outcome to: \"ok: ...\" or \"failed: ...\". null reports nothing. The instance role needs ssm:PutParameter on it."
  type        = string
  default     = null

  validation {
    condition     = var.status_parameter == null || can(regex("^/[A-Za-z0-9_./-]{1,1000}$", var.status_parameter))
    error_message = "status_parameter must be a fully qualified SSM parameter name such as /latency-pair/status/server."
  }
}

variable "service_user" {
  description = "Unprivileged system user (and group) the service runs as; created at boot."
  type        = string
  default     = "latency"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,30}$", var.service_user)) && var.service_user != "root"
    error_message = "service_user must be a valid, non-root Linux user name (lower case, at most 31 characters)."
  }
}

variable "install_ssm_agent" {
  description = "Install the AWS SSM agent at boot (Debian's AMIs do not ship it) so that Session Manager works without SSH."
  type        = bool
  default     = true
}

variable "agent_grpc_port" {
  description = "Agent and member: TCP port latency-agent listens on for gRPC echo."
  type        = number
  default     = 50051

  validation {
    condition     = var.agent_grpc_port == floor(var.agent_grpc_port) && var.agent_grpc_port >= 1 && var.agent_grpc_port <= 65535
    error_message = "agent_grpc_port must be an integer between 1 and 65535."
  }
}

variable "targets" {
  description = "Server and member: agents to probe, in order (the first is the one /metrics reports as latency_ms). name labels the target, host is an IPv4 address or DNS name, port the agent's gRPC port."
  type = list(object({
    name = string
    host = string
    port = optional(number, 50051)
  }))
  default = []

  validation {
    condition     = alltrue([for t in var.targets : can(regex("^[a-z0-9]([a-z0-9_-]{0,30}[a-z0-9])?$", t.name))])
    error_message = "Target names must be 1-32 lower-case letters, digits, '-' or '_', starting and ending with a letter or digit."
  }

  validation {
    condition     = length(distinct([for t in var.targets : t.name])) == length(var.targets)
    error_message = "Target names must be unique."
  }

  validation {
    condition     = alltrue([for t in var.targets : can(regex("^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$", t.host))])
    error_message = "Every target host must be an IPv4 address or a DNS name."
  }

  validation {
    condition     = alltrue([for t in var.targets : t.port == floor(t.port) && t.port >= 1 && t.port <= 65535])
    error_message = "Every target port must be an integer between 1 and 65535."
  }

  validation {
    condition     = var.role == "agent" || length(var.targets) > 0
    error_message = "A server or member needs at least one target."
  }
}

variable "vantage_point" {
  description = "Server and member: where the server measures from (latency-server --source, e.g. its mesh member name or its Availability Zone): the `source` label of every metric and `source` in API answers. null: latency-server's default, the host name."
  type        = string
  default     = null

  validation {
    condition     = var.vantage_point == null || can(regex("^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,126}[A-Za-z0-9])?$", var.vantage_point))
    error_message = "vantage_point must be 1-128 letters, digits, '_', '.', ':' or '-', starting and ending with a letter or digit."
  }
}

variable "grpc_port" {
  description = "Server and member: TCP port of the gRPC query service (--grpc_listen)."
  type        = number
  default     = 50052

  validation {
    condition     = var.grpc_port == floor(var.grpc_port) && var.grpc_port >= 1 && var.grpc_port <= 65535
    error_message = "grpc_port must be an integer between 1 and 65535."
  }
}

variable "http_port" {
  description = "Server and member: TCP port of the HTTP/JSON gateway that serves /metrics (--http_listen)."
  type        = number
  default     = 5000

  validation {
    condition     = var.http_port == floor(var.http_port) && var.http_port >= 1 && var.http_port <= 65535 && var.http_port != var.grpc_port
    error_message = "http_port must be an integer between 1 and 65535, different from grpc_port."
  }
}

variable "probe_interval" {
  description = "Server and member: probe interval per target (--interval), a duration such as 1s, 500ms or 1m; at least 100ms."
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
  description = "Log level of the services (--log_level)."
  type        = string
  default     = "info"

  validation {
    condition     = contains(["trace", "debug", "info", "warn", "error", "critical", "off"], var.log_level)
    error_message = "log_level must be one of trace, debug, info, warn, error, critical, off."
  }
}

variable "log_format" {
  description = "Agent and member: log format of latency-agent (--log_format), text or json."
  type        = string
  default     = "text"

  validation {
    condition     = contains(["text", "json"], var.log_format)
    error_message = "log_format must be \"text\" or \"json\"."
  }
}
