locals {
  is_server      = var.role == "server"
  install_method = var.package != null ? "package" : (var.container_image != null ? "container" : "source")
  from_package   = local.install_method == "package"
  binary         = local.is_server ? "latency-server" : "latency-agent"

  # Flags of the service, in the order the binaries document them. Every value that reaches
  # them is validated to a shell- and systemd-safe character set, so no quoting is needed.
  # Installed from the package, the targets and the interval live in the config file the sync
  # timer delivers (server_config), so changing them reloads the server instead of replacing it.
  server_args = concat(
    local.from_package ? [] : [for t in var.targets : "--target=${t.name}=${t.host}:${t.port}"],
    [
      "--grpc_listen=0.0.0.0:${var.grpc_port}",
      "--http_listen=0.0.0.0:${var.http_port}",
    ],
    local.from_package ? [] : ["--interval=${var.probe_interval}"],
    ["--log_level=${var.log_level}"],
  )
  agent_args = [
    "--listen=0.0.0.0:${var.agent_grpc_port}",
    "--log_level=${var.log_level}",
    "--log_format=${var.log_format}",
  ]
  args = local.is_server ? local.server_args : local.agent_args

  interval_ms = (
    endswith(var.probe_interval, "ms") ? tonumber(trimsuffix(var.probe_interval, "ms")) :
    endswith(var.probe_interval, "s") ? tonumber(trimsuffix(var.probe_interval, "s")) * 1000 :
    tonumber(trimsuffix(var.probe_interval, "m")) * 60000
  )
  # latency.v1.ServerConfig as text proto. Names and hosts are validated to [a-z0-9_.:-].
  server_config = join("\n", concat(
    ["# latency-server targets, rendered by Terraform (infra/modules/_user_data): edits here are overwritten."],
    [for t in var.targets : "targets { name: \"${t.name}\" host: \"${t.host}\" grpc_port: ${t.port} }"],
    ["defaults { interval_ms: ${local.interval_ms} }", ""],
  ))

  # The only capability either program could need is binding a port below 1024 (source
  # installs only; container installs reject such ports).
  listen_ports       = local.is_server ? [var.grpc_port, var.http_port] : [var.agent_grpc_port]
  needs_bind_service = anytrue([for p in local.listen_ports : p < 1024])

  # Single-quote for bash; validation already excludes quotes, this is defence in depth.
  shell_quote = {
    for k, v in {
      git_url         = var.git_url
      git_ref         = var.git_ref
      container_image = var.container_image
      service_user    = var.service_user
      bucket          = try(var.package.bucket, null)
      manifest_key    = try(var.package.manifest_key, null)
      config_key      = try(var.package.config_key, null)
      status          = var.status_parameter
    } : k => v == null ? "''" : "'${replace(v, "'", "'\\''")}'"
  }

  rendered = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
    role               = var.role
    description        = local.is_server ? "latency-pair metrics server (latency-server)" : "latency-pair agent (latency-agent)"
    binary             = local.binary
    service_name       = local.binary
    args               = join(" ", local.args)
    install_method     = local.install_method
    git_url            = local.shell_quote.git_url
    git_ref            = local.shell_quote.git_ref
    container_image    = local.shell_quote.container_image
    image_ref          = coalesce(var.container_image, "none")
    service_user       = local.shell_quote.service_user
    service_user_raw   = var.service_user
    bucket             = local.shell_quote.bucket
    manifest_key       = local.shell_quote.manifest_key
    config_key         = local.shell_quote.config_key
    status_parameter   = local.shell_quote.status
    install_ssm_agent  = var.install_ssm_agent
    needs_bind_service = local.needs_bind_service
  })
}
