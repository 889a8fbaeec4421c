#!/usr/bin/env bash
# Runs every offline check of the Terraform code in infra/:
#   - terraform fmt -check -recursive
#   - terraform init (local provider mirror only) + validate, for the root, every module,
#     every example and the user_data render harness
#   - terraform test (mock_provider "aws") for the root and every module that has tests/
#   - shellcheck on the rendered user_data: agent, server and mesh member, package, source build
#     and container, and the Prometheus host
#   - promtool check config on the Prometheus host's rendered prometheus.yml (with the rules)
#   - shellcheck on this script
# No network, no AWS credentials: the AWS provider comes from a local filesystem mirror and
# every test mocks it.
#
# Usage: bash infra/scripts/check.sh
# Environment:
#   TF_PLUGIN_MIRROR  directory holding registry.terraform.io/hashicorp/aws/... (found when unset)
#   KEEP_WORKDIR=1    keep the temporary work tree (and its logs) for debugging
#
# It works on a temporary copy of infra/, so it never writes .terraform/, lock files or
# state into the source tree. Output ends with "N passed, M failed"; exit status 0 only
# when nothing failed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INFRA_DIR="$(cd "${SCRIPT_DIR}/.." && pwd)"
readonly SCRIPT_DIR INFRA_DIR

# Directories (relative to infra/) that are Terraform configurations to init and validate.
readonly CONFIG_DIRS=(
  .
  modules/_user_data
  modules/_instance_role
  modules/_artifacts
  modules/network
  modules/agent
  modules/metrics_server
  modules/_prometheus_user_data
  modules/prometheus
  modules/mesh
  examples/basic
  examples/cross_az
  examples/cluster_placement
  examples/mesh
  tests/render
)
# The rendered boot scripts (outputs of tests/render): six latency-pair hosts, three mesh
# members (agent and server on one host), two Prometheus.
readonly USER_DATA_VARIANTS=(agent_package server_package agent_source agent_container server_source server_container
  member_package member_source member_container prometheus prometheus_tls)
# The rendered prometheus.yml files (outputs of tests/render), checked by promtool.
readonly PROMETHEUS_CONFIGS=(prometheus_config prometheus_tls_config)

passed=0
failed=0
summary=()

log() {
  printf '==> %s\n' "$*"
}

die() {
  printf 'check.sh: %s\n' "$*" >&2
  exit 2
}

# ---- environment: offline, no credentials ---------------------------------------------------

for tool in terraform shellcheck promtool tar; do
  command -v "${tool}" >/dev/null 2>&1 || die "${tool} is not installed"
done

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/infra-check.XXXXXX")"
readonly WORK_DIR
cleanup() {
  if [[ "${KEEP_WORKDIR:-0}" == "1" ]]; then
    printf 'work tree kept in %s\n' "${WORK_DIR}" >&2
  else
    rm -rf "${WORK_DIR}"
  fi
}
trap cleanup EXIT

mkdir -p "${WORK_DIR}/logs" "${WORK_DIR}/rendered"
# An empty CLI configuration: no credentials, no network mirrors from the caller's setup.
: >"${WORK_DIR}/terraformrc"
export TF_CLI_CONFIG_FILE="${WORK_DIR}/terraformrc"
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1 TF_INPUT=0
unset TF_DATA_DIR TF_WORKSPACE TF_PLUGIN_CACHE_DIR
# Never reach AWS, even by accident: no credentials, no shared config, no instance metadata.
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true

# ---- the provider mirror ----------------------------------------------------------------------

platform="$(terraform version -json | sed -n 's/.*"platform": *"\([^"]*\)".*/\1/p')"
[[ -n "${platform}" ]] || die "cannot tell terraform's platform from 'terraform version -json'"

is_mirror() {
  compgen -G "$1/registry.terraform.io/hashicorp/aws/*/${platform}/terraform-provider-aws_*" >/dev/null
}

find_mirror() {
  local candidate provider
  if [[ -n "${TF_PLUGIN_MIRROR:-}" ]]; then
    is_mirror "${TF_PLUGIN_MIRROR}" || die "TF_PLUGIN_MIRROR=${TF_PLUGIN_MIRROR} holds no hashicorp/aws provider for ${platform}"
    printf '%s\n' "${TF_PLUGIN_MIRROR}"
    return 0
  fi
  for candidate in /opt/tf-plugins "${HOME:-/root}/.terraform.d/plugins" /usr/local/share/terraform/plugins /usr/share/terraform/plugins; do
    if is_mirror "${candidate}"; then
      printf '%s\n' "${candidate}"
      return 0
    fi
  done
  provider="$(find / -xdev -path "*/registry.terraform.io/hashicorp/aws/*/${platform}/*" \
    -name 'terraform-provider-aws_*' -type f -print -quit 2>/dev/null || true)"
  [[ -n "${provider}" ]] || die "no local AWS provider mirror found; set TF_PLUGIN_MIRROR"
  printf '%s\n' "${provider%%/registry.terraform.io/*}"
}

MIRROR="$(find_mirror)"
readonly MIRROR

# ---- a private copy of infra/ -----------------------------------------------------------------

readonly TREE="${WORK_DIR}/infra"
mkdir -p "${TREE}"
tar -C "${INFRA_DIR}" \
  --exclude=.terraform --exclude=.terraform.lock.hcl --exclude='*.tfstate' --exclude='*.tfstate.*' \
  -cf - . | tar -C "${TREE}" -xf -

log "terraform $(terraform version -json | sed -n 's/.*"terraform_version": *"\([^"]*\)".*/\1/p') (${platform}), provider mirror ${MIRROR}"
log "checking a copy of ${INFRA_DIR} in ${TREE}"

# ---- checks -----------------------------------------------------------------------------------
# Each check is a function whose status is its last command's; they use && chains because
# errexit does not apply inside a function called from an if.

check_fmt() {
  terraform -chdir="${TREE}" fmt -check -recursive -diff -no-color
}

check_self() {
  shellcheck --shell=bash "${SCRIPT_DIR}/check.sh"
}

check_validate() {
  local dir="${TREE}/$1"
  terraform -chdir="${dir}" init -backend=false -input=false -no-color -plugin-dir="${MIRROR}" &&
    terraform -chdir="${dir}" validate -no-color
}

check_test() {
  terraform -chdir="${TREE}/$1" test -no-color
}

check_render() {
  local dir="${TREE}/tests/render" variant
  terraform -chdir="${dir}" apply -auto-approve -input=false -no-color >/dev/null || return 1
  for variant in "${USER_DATA_VARIANTS[@]}"; do
    terraform -chdir="${dir}" output -raw "${variant}" >"${WORK_DIR}/rendered/${variant}.sh" || return 1
    printf 'rendered %s (%s bytes)\n' "${variant}" "$(wc -c <"${WORK_DIR}/rendered/${variant}.sh")"
  done
}

# promtool check config on a rendered prometheus.yml, its absolute paths moved into a scratch
# directory that holds the repository's rules and stand-in credential files.
check_promtool_config() {
  local dir="${WORK_DIR}/promtool/$1"
  mkdir -p "${dir}/rules.d" "${dir}/latency-pair"
  cp "${TREE}"/prometheus/*.rules.yml "${dir}/rules.d/"
  : >"${dir}/latency-pair/ca.crt"
  printf 'token\n' >"${dir}/latency-pair/token"
  terraform -chdir="${TREE}/tests/render" output -raw "$1" |
    sed -e "s|/etc/prometheus/rules.d|${dir}/rules.d|g" \
      -e "s|/etc/prometheus/latency-pair|${dir}/latency-pair|g" >"${dir}/prometheus.yml" &&
    promtool check config "${dir}/prometheus.yml"
}

check_shellcheck_user_data() {
  local file="${WORK_DIR}/rendered/$1.sh"
  [[ -s "${file}" ]] && head -n 1 "${file}" | grep -qx '#!/bin/bash' && shellcheck --shell=bash "${file}"
}

run_check() {
  local name="$1" started elapsed logfile detail=""
  shift
  logfile="${WORK_DIR}/logs/$((passed + failed + 1))-${name//[^A-Za-z0-9._-]/_}.log"
  started="${SECONDS}"
  if "$@" >"${logfile}" 2>&1; then
    elapsed=$((SECONDS - started))
    # terraform test reports "Success! N passed, 0 failed.": show N as the run count.
    detail="$(sed -n 's/^Success! \([0-9]*\) passed.*/ (\1 runs)/p' "${logfile}" | tail -n 1)"
    passed=$((passed + 1))
    summary+=("PASS  ${name}${detail}  [${elapsed}s]")
    printf 'PASS  %s%s  [%ss]\n' "${name}" "${detail}" "${elapsed}"
  else
    elapsed=$((SECONDS - started))
    failed=$((failed + 1))
    summary+=("FAIL  ${name}  [${elapsed}s]")
    printf 'FAIL  %s  [%ss]\n' "${name}" "${elapsed}"
    sed -e 's/^/      | /' "${logfile}" | tail -n 60
  fi
}

started_all="${SECONDS}"

run_check "terraform fmt -check -recursive" check_fmt
run_check "shellcheck scripts/check.sh" check_self

for dir in "${CONFIG_DIRS[@]}"; do
  run_check "init + validate ${dir}" check_validate "${dir}"
done

# Root first, then every module that carries tests.
test_dirs=(.)
for dir in "${TREE}"/modules/*/; do
  dir="${dir%/}"
  if compgen -G "${dir}/tests/*.tftest.hcl" >/dev/null; then
    test_dirs+=("modules/${dir##*/}")
  fi
done
for dir in "${test_dirs[@]}"; do
  run_check "terraform test ${dir}" check_test "${dir}"
done

run_check "render user_data (tests/render)" check_render
for variant in "${USER_DATA_VARIANTS[@]}"; do
  run_check "shellcheck user_data ${variant}" check_shellcheck_user_data "${variant}"
done
for config in "${PROMETHEUS_CONFIGS[@]}"; do
  run_check "promtool check config ${config}" check_promtool_config "${config}"
done

printf '\nSummary (%ss):\n' "$((SECONDS - started_all))"
printf '  %s\n' "${summary[@]}"
printf '%s passed, %s failed\n' "${passed}" "${failed}"
[[ "${failed}" -eq 0 ]]
