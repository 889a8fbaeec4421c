locals {
  # A mesh member runs both programs: its agent answers the other members' probes, its server
  # probes them.
  runs_server    = contains(["server", "member"], var.role)
  runs_agent     = contains(["agent", "member"], var.role)
  install_method = var.package != null ? "package" : (var.container_image != null ? "container" : "source")
  from_package   = local.install_method == "package"

  # An image in ECR (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPOSITORY): docker logs in with a
  # token the instance role asks that region's ECR for; the role may pull that repository only.
  ecr = try(regex("^(?P<registry>(?P<account>[0-9]{12})\\.dkr\\.ecr\\.(?P<region>[a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?)/(?P<repository>[^:@]+)", var.container_image), null)

  # What the script reaches over TCP, beyond the instance metadata: S3, SSM, registries and
  # Debian's AWS mirror (https://cdn-aws.deb.debian.org) are HTTPS; a source build also runs
  # scripts/setup.sh, git and npm, which may follow http:// mirrors.
  egress_ports = local.install_method == "source" ? [80, 443] : [443]

  # Flags of the service, in the order the binaries document them. Every value that reaches
  # them is validated to a shell- and systemd-safe character set, so no quoting is needed.
  # TLS material and the token: file name under /etc/latency-pair/tls -> SSM parameter name.
  tls_dir = "/etc/latency-pair/tls"
  secret_files = { for name, parameter in {
    "ca.crt"        = try(var.secrets.ca, null)
    "cert.crt"      = try(var.secrets.cert, null)
    "cert.key"      = try(var.secrets.key, null)
    "client.crt"    = try(var.secrets.client_cert, null)
    "client.key"    = try(var.secrets.client_key, null)
    "client-ca.crt" = try(var.secrets.client_ca, null)
    "token"         = try(var.secrets.token, null)
  } : name => parameter if parameter != null }
  has_secret = { for name in ["ca.crt", "cert.crt", "client.crt", "client-ca.crt", "token"] : name => contains(keys(local.secret_files), name) }
  server_secret_args = concat(
    local.has_secret["cert.crt"] ? [
      "--grpc_tls_cert=${local.tls_dir}/cert.crt", "--grpc_tls_key=${local.tls_dir}/cert.key",
      "--http_tls_cert=${local.tls_dir}/cert.crt", "--http_tls_key=${local.tls_dir}/cert.key",
    ] : [],
    local.has_secret["ca.crt"] ? ["--probe_tls_ca=${local.tls_dir}/ca.crt"] : [],
    local.has_secret["client.crt"] ? ["--probe_tls_cert=${local.tls_dir}/client.crt", "--probe_tls_key=${local.tls_dir}/client.key"] : [],
    local.has_secret["token"] ? ["--auth_token_file=${local.tls_dir}/token"] : [],
  )
  agent_secret_args = concat(
    local.has_secret["cert.crt"] ? ["--tls_cert=${local.tls_dir}/cert.crt", "--tls_key=${local.tls_dir}/cert.key"] : [],
    local.has_secret["client-ca.crt"] ? ["--tls_client_ca=${local.tls_dir}/client-ca.crt"] : [],
  )

  # Installed from the package, the targets, the interval and the source live in the config
  # file the sync timer delivers (server_config), so changing them reloads the server instead of
  # replacing it.
  server_args = concat(
    local.from_package ? [] : [for t in var.targets : "--target=${t.name}=${t.host}:${t.port}"],
    [
      "--grpc_listen=0.0.0.0:${var.grpc_port}",
      "--http_listen=0.0.0.0:${var.http_port}",
    ],
    local.from_package ? [] : ["--interval=${var.probe_interval}"],
    local.from_package || var.vantage_point == null ? [] : ["--source=${var.vantage_point}"],
    ["--log_level=${var.log_level}"],
    local.server_secret_args,
  )
  agent_args = concat(
    [
      "--listen=0.0.0.0:${var.agent_grpc_port}",
      "--log_level=${var.log_level}",
      "--log_format=${var.log_format}",
    ],
    local.agent_secret_args,
  )

  interval_ms = (
    endswith(var.probe_interval, "ms") ? tonumber(trimsuffix(var.probe_interval, "ms")) :
    endswith(var.probe_interval, "s") ? tonumber(trimsuffix(var.probe_interval, "s")) * 1000 :
    tonumber(trimsuffix(var.probe_interval, "m")) * 60000
  )
  # latency.v1.ServerConfig as text proto. Names, hosts and the source are validated to
  # [A-Za-z0-9_.:-].
  server_config = join("\n", concat(
    ["# latency-server targets, rendered by Terraform (infra/modules/_user_data): edits here are overwritten."],
    var.vantage_point == null ? [] : ["source: \"${var.vantage_point}\""],
    [for t in var.targets : "targets { name: \"${t.name}\" host: \"${t.host}\" grpc_port: ${t.port} }"],
    ["defaults { interval_ms: ${local.interval_ms} }", ""],
  ))

  # The systemd services the script installs (package: enables) and starts, the agent first. The
  # only capability either program could need is binding a port below 1024 (source installs
  # only; container installs reject such ports).
  services = concat(
    local.runs_agent ? [{
      name               = "latency-agent"
      description        = "latency-pair agent (latency-agent)"
      args               = join(" ", local.agent_args)
      needs_bind_service = var.agent_grpc_port < 1024
    }] : [],
    local.runs_server ? [{
      name               = "latency-server"
      description        = "latency-pair metrics server (latency-server)"
      args               = join(" ", local.server_args)
      needs_bind_service = var.grpc_port < 1024 || var.http_port < 1024
    }] : [],
  )

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

  # The AWS helpers (IMDSv2 credentials, SigV4-signed S3 and SSM calls, the status report), a
  # file the boot script installs for itself and latency-pair-sync; the Prometheus host's boot
  # script renders the same template.
  aws_sh = templatefile("${path.module}/templates/aws.sh.tftpl", {
    bucket           = local.shell_quote.bucket
    manifest_key     = local.shell_quote.manifest_key
    config_key       = local.shell_quote.config_key
    status_parameter = local.shell_quote.status
  })

  # What every boot script starts with: the AWS helpers installed and sourced, logging, the
  # failure report, apt with retries, the SSM agent (also the Prometheus host's).
  prelude = templatefile("${path.module}/templates/prelude.sh.tftpl", {
    aws_sh            = local.aws_sh
    packages          = join(" ", concat(["ca-certificates", "curl"], length(local.secret_files) > 0 ? ["python3"] : []))
    install_ssm_agent = var.install_ssm_agent
  })

  rendered = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
    role              = var.role
    runs_agent        = local.runs_agent
    runs_server       = local.runs_server
    services          = local.services
    agent_args        = join(" ", local.agent_args)
    server_args       = join(" ", local.server_args)
    install_method    = local.install_method
    git_url           = local.shell_quote.git_url
    git_ref           = local.shell_quote.git_ref
    container_image   = local.shell_quote.container_image
    ecr_registry      = try(local.ecr.registry, "")
    ecr_region        = try(local.ecr.region, "")
    image_ref         = coalesce(var.container_image, "none")
    service_user      = local.shell_quote.service_user
    service_user_raw  = var.service_user
    prelude           = local.prelude
    secret_files      = local.secret_files
    tls_dir           = local.tls_dir
    install_ssm_agent = var.install_ssm_agent
  })
}
