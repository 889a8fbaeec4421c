locals {
  is_server      = var.role == "server"
  install_method = var.container_image == null ? "source" : "container"
  binary         = local.is_server ? "latency-server" : "latency-agent"

  # Flags of the service, in the order the binaries document them. Every value that reaches
  # them is validated to a shell- and systemd-safe character set, so no quoting is needed.
  server_args = concat(
    [for t in var.targets : "--target=${t.name}=${t.host}:${t.port}"],
    [
      "--grpc_listen=0.0.0.0:${var.grpc_port}",
      "--http_listen=0.0.0.0:${var.http_port}",
      "--interval=${var.probe_interval}",
      "--log_level=${var.log_level}",
    ],
  )
  agent_args = [
    "--listen=0.0.0.0:${var.agent_grpc_port}",
    "--log_level=${var.log_level}",
    "--log_format=${var.log_format}",
  ]
  args = local.is_server ? local.server_args : local.agent_args

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
    install_ssm_agent  = var.install_ssm_agent
    needs_bind_service = local.needs_bind_service
  })
}
