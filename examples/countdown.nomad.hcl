# Three batch allocations that each count down from a variable and exit.
#   yurt job run -var from=5 examples/countdown.nomad.hcl
variable "from" {
  type    = number
  default = 3
}

job "countdown" {
  type = "batch"

  group "countdown" {
    count = 3

    task "count" {
      driver = "raw_exec"

      config {
        command = "/bin/sh"
        args = ["-c", <<-EOT
          for i in $(seq ${var.from} -1 1); do
            echo "alloc ${NOMAD_ALLOC_INDEX}: $i"
            sleep 1
          done
          echo "alloc ${NOMAD_ALLOC_INDEX}: liftoff"
        EOT
        ]
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }
  }
}
