job "vm" {
  group "vm" {
    task "ubuntu" {
      driver = "qemu"

      config {
        image_path        = "local/ubuntu.img"
        accelerator       = "kvm"
        graceful_shutdown = true
        args              = ["-nodefaults", "-nodefconfig"]
        port_map {
          ssh = 22
        }
      }

      artifact {
        source = "https://cloud-images.example.com/ubuntu.img"
      }

      kill_timeout = "30s"

      resources {
        cpu    = 2000
        memory = 2048
      }
    }
  }
}
