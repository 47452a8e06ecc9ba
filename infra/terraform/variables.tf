variable "project" {
  description = "Google Cloud project id."
  type        = string
}

variable "region" {
  description = "Region of the bucket, the Dataflow jobs and the scheduler job (e.g. us-central1)."
  type        = string
}

variable "bucket_name" {
  description = "GCS bucket for outputs, temp/staging files and the template spec (created here)."
  type        = string
}

variable "output_prefix" {
  description = "Folder in the bucket that holds OUTPUT/<snapshot>/ (extracted, refined, shards, _COMPLETE.json)."
  type        = string
  default     = "corpus"
}

variable "template_path" {
  description = "gs:// path of the Flex Template spec written by make dataflow-template; default gs://BUCKET/templates/corpus-pipeline.json."
  type        = string
  default     = ""
}

variable "artifact_repository" {
  description = "Artifact Registry (Docker) repository holding the template image; the workers may read it."
  type        = string
  default     = "corpus-pipeline"
}

variable "schedule" {
  description = "Cron schedule of the launch (Cloud Scheduler syntax). Default: 03:00 UTC on the 5th of every month."
  type        = string
  default     = "0 3 5 * *"
}

variable "time_zone" {
  description = "Time zone of the schedule."
  type        = string
  default     = "Etc/UTC"
}

variable "source_kind" {
  description = "Where the workers read Common Crawl: s3 (needs the AWS secret) or https."
  type        = string
  default     = "s3"
  validation {
    condition     = contains(["s3", "https"], var.source_kind)
    error_message = "source_kind must be s3 or https."
  }
}

variable "max_warcs" {
  description = "Deterministic sample of this many WARC files per snapshot; 0 = the whole snapshot."
  type        = number
  default     = 0
}

variable "tokenizer" {
  description = "Template parameter tokenizer: a gs:// tokenizer.json, or train."
  type        = string
  default     = "train"
}

variable "stages" {
  description = "Template parameter stages."
  type        = string
  default     = "extract,refine,tokenize"
}

variable "pipeline_config" {
  description = "Optional gs:// URL of a YAML config overriding configs/defaults (empty = defaults)."
  type        = string
  default     = ""
}

variable "flexrs" {
  description = "Use FlexRS (flexrs_goal = COST_OPTIMIZED): discounted, preemptible batch capacity; jobs may wait up to 6 hours to start."
  type        = bool
  default     = false
}

variable "max_workers" {
  description = "Upper bound of Dataflow autoscaling per job."
  type        = number
  default     = 500
}

variable "machine_type" {
  description = "Dataflow worker machine type."
  type        = string
  default     = "n2-standard-4"
}

variable "temp_retention_days" {
  description = "Objects under tmp/ and staging/ are deleted after this many days."
  type        = number
  default     = 7
}

variable "aws_secret_name" {
  description = "Secret Manager secret that holds the AWS access key for s3://commoncrawl (value added by hand, never in Terraform)."
  type        = string
  default     = "commoncrawl-aws-credentials"
}
