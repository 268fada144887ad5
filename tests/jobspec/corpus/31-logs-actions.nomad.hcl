job "ops" {
  group "g" {
    task "app" {
      driver      = "docker"
      kill_signal = "SIGQUIT"

      logs {
        max_files     = 5
        max_file_size = 20
        disabled      = false
      }

      action "dump-heap" {
        command = "/bin/dump"
        args    = ["--heap", "/alloc/data/heap.out"]
      }

      action "ping" {
        command = "/bin/echo"
      }

      config {
        image = "example/app:1"
      }
    }

    task "quiet" {
      driver = "docker"

      logs {
        enabled = false
      }

      config {
        image = "example/quiet:1"
      }
    }
  }
}
