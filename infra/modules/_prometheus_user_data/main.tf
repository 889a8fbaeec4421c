# The Prometheus host's boot script and prometheus.yml (infra/modules/prometheus), rendered
# without a provider so that tests/render can run shellcheck and promtool on them.

locals {
  secret_dir = "/etc/prometheus/latency-pair"
  # File under secret_dir -> SSM parameter.
  secret_files = { for file, parameter in {
    "ca.crt" = var.tls_ca_parameter
    "token"  = var.auth_token_parameter
  } : file => parameter if parameter != null }

  prometheus_config = templatefile("${path.module}/templates/prometheus.yml.tftpl", {
    region          = var.region
    filters         = var.ec2_sd_filters
    port            = var.scrape_port
    scrape_interval = var.scrape_interval
    https           = var.tls_ca_parameter != null
    token           = var.auth_token_parameter != null
    secret_dir      = local.secret_dir
    rule_dir        = "/etc/prometheus/rules.d"
  })

  # The same AWS helpers and prelude as the latency-pair hosts' boot scripts.
  aws_sh = templatefile("${path.module}/../_user_data/templates/aws.sh.tftpl", {
    bucket           = "''"
    manifest_key     = "''"
    config_key       = "''"
    status_parameter = "'${var.status_parameter}'"
  })
  prelude = templatefile("${path.module}/../_user_data/templates/prelude.sh.tftpl", {
    aws_sh            = local.aws_sh
    packages          = join(" ", concat(["ca-certificates", "curl"], length(local.secret_files) > 0 ? ["python3"] : []))
    install_ssm_agent = var.install_ssm_agent
  })

  rendered = templatefile("${path.module}/templates/bootstrap.sh.tftpl", {
    prelude           = local.prelude
    prometheus_config = local.prometheus_config
    # Each ends with one newline, so its heredoc delimiter stands on a line of its own.
    rule_files   = { for name, content in var.rule_files : name => "${trimsuffix(content, "\n")}\n" }
    retention    = var.retention
    secret_files = local.secret_files
    secret_dir   = local.secret_dir
  })
}
