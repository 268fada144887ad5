job "disk-cleanup" {
  type = "sysbatch"

  periodic {
    cron             = "@daily"
    prohibit_overlap = false
  }

  group "cleanup" {
    task "prune" {
      driver = "raw_exec"
      user   = "root"

      config {
        command = "/usr/bin/find"
        args    = ["/var/tmp", "-mtime", "+7", "-delete"]
      }
    }
  }
}
