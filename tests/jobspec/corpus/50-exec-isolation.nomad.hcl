job "exec-iso" {
  type = "batch"

  group "g" {
    task "build" {
      driver = "exec"
      user   = "builder"

      config {
        command  = "/bin/bash"
        args     = ["-c", "make -j${attr.cpu.numcores}"]
        pid_mode = "private"
        ipc_mode = "private"
        cap_add  = ["sys_time"]
        work_dir = "/local/src"
      }

      resources {
        cores  = 2
        memory = 1024
      }
    }
  }
}
