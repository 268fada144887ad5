job "csi-nfs-node" {
  type = "system"

  group "node" {
    task "plugin" {
      driver = "docker"

      csi_plugin {
        id                     = "nfs"
        type                   = "node"
        mount_dir              = "/csi"
        stage_publish_base_dir = "/local/csi"
        health_timeout         = "1m"
      }

      config {
        image      = "registry.k8s.io/sig-storage/nfsplugin:v4.6.0"
        privileged = true
        args       = ["--endpoint=unix://csi/csi.sock", "--nodeid=${attr.unique.hostname}"]
      }
    }
  }
}
