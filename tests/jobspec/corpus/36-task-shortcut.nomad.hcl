# A task directly inside the job becomes a group of its own.
job "shortcut" {
  datacenters = ["dc1"]

  task "solo" {
    driver = "raw_exec"

    config {
      command = "/bin/sleep"
      args    = ["3600"]
    }
  }

  group "pair" {
    task "one" {
      driver = "raw_exec"

      config {
        command = "/bin/true"
      }
    }
  }
}
