variable "name_prefix" {
  description = "Prefix of the role's and the instance profile's names (its first 38 characters, IAM's limit for a role's)."
  type        = string
}

variable "description" {
  description = "Description of the role."
  type        = string
}

variable "session_manager" {
  description = "Allow the SSM agent to register and carry Session Manager sessions (the minimal policy AWS documents)."
  type        = bool
  default     = true
}

variable "artifact_bucket" {
  description = "Name of the artifact bucket (package installs), or null."
  type        = string
  default     = null
}

variable "artifact_keys" {
  description = "Keys of the objects in artifact_bucket the instance may read (s3:GetObject), each by exact ARN: the manifest, the package, the server's config."
  type        = list(string)
  default     = []
}

variable "secret_parameters" {
  description = "Names of the SSM parameters holding TLS material and the token that the instance may read (ssm:GetParameter), each by exact ARN in this account and region."
  type        = list(string)
  default     = []
}

variable "status_parameter_arns" {
  description = "SSM parameters the instance may write its boot and sync status to (ssm:PutParameter), by exact ARN."
  type        = list(string)
  default     = []
}

variable "ecr_repositories" {
  description = "ECR repositories ({ account, region, name }) the instance pulls its image from."
  type        = list(object({ account = string, region = string, name = string }))
  default     = []
}

variable "discover_instances" {
  description = "Allow ec2:DescribeInstances and ec2:DescribeAvailabilityZones (Prometheus' ec2_sd_configs; EC2 takes no resource for them)."
  type        = bool
  default     = false
}

variable "permissions_boundary" {
  description = "ARN of a managed policy set as the role's permissions boundary, or null."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags of the role and the instance profile."
  type        = map(string)
  default     = {}
}
