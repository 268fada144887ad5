# A batch job: prints a line and exits 0, so its allocation completes.
#   yurt job run examples/batch.nomad.hcl
job "batch" {
  type = "batch"

  group "batch" {
    task "say" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args    = ["-c", "echo \"batch job ${NOMAD_JOB_ID} ran on ${node.unique.name}\"; exit 0"]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
