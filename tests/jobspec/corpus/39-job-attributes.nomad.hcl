job "label-id" {
  id               = "explicit-id"
  name             = "Human Name"
  all_at_once      = true
  vault_token      = ""
  consul_token     = ""
  consul_namespace = "legacy"
  vault_namespace  = "legacy"

  group "g" {
    task "t" {
      driver = "docker"
      kind   = "connect-proxy:api"
      user   = "nobody"

      config {
        image = "busybox:1"
      }
    }
  }
}
