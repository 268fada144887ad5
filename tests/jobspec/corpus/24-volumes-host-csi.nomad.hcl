job "storage" {
  group "db" {
    volume "data" {
      type      = "host"
      source    = "pg-data"
      read_only = false
      sticky    = true
    }

    volume "shared" {
      type            = "csi"
      source          = "shared-nfs"
      read_only       = true
      per_alloc       = true
      access_mode     = "multi-node-reader-only"
      attachment_mode = "file-system"

      mount_options {
        fs_type     = "ext4"
        mount_flags = ["noatime", "nodiratime"]
      }
    }

    ephemeral_disk {
      size    = 1024
      sticky  = true
      migrate = true
    }

    task "postgres" {
      driver = "docker"

      volume_mount {
        volume           = "data"
        destination      = "/var/lib/postgresql/data"
        read_only        = false
        propagation_mode = "private"
        selinux_label    = "z"
      }

      volume_mount {
        volume           = "shared"
        destination      = "/shared"
        propagation_mode = "host-to-task"
      }

      config {
        image = "postgres:16"
      }
    }
  }
}
