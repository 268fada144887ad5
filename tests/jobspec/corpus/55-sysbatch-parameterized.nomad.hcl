job "node-maintenance" {
  type = "sysbatch"

  parameterized {
    payload       = "forbidden"
    meta_required = ["action"]
  }

  group "maint" {
    task "run" {
      driver = "raw_exec"

      config {
        command = "/usr/local/bin/maint"
        args    = ["${NOMAD_META_action}"]
      }
    }
  }
}
