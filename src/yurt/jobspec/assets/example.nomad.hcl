# A job file holds exactly one job. This one is called "example", which becomes
# both its ID and its Name.
#
# The "job" block is the outermost block of a job specification. A job declares
# what to run: one or more task groups, each holding one or more tasks.
#
# Reference: https://developer.hashicorp.com/nomad/docs/job-specification/job
#
job "example" {
  # "region" picks the region that runs the job; it defaults to "global".
  # region = "global"
  #
  # "datacenters" lists the datacenters (glob patterns allowed) whose nodes may
  # run the job. "*" means every datacenter, which is also the default.
  datacenters = ["*"]

  # "type" selects the scheduler: "service" (the default) for long-running work,
  # "batch" and "sysbatch" for work that finishes, "system" for one copy per node.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/schedulers
  #
  type = "service"

  # A "constraint" limits placement to nodes whose attributes match. It may be
  # written at the job, group or task level.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/constraint
  #
  # constraint {
  #   attribute = "${attr.kernel.name}"
  #   value     = "linux"
  # }

  # "update" describes how a new version of the job rolls out: how many
  # allocations change at a time, canaries, blue/green. Written here, it applies
  # to every group; a group's own "update" block overrides single fields.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/update
  #
  update {
    # Replace one allocation at a time.
    max_parallel = 1

    # How long a new allocation must stay healthy before it counts as healthy.
    min_healthy_time = "10s"

    # An allocation that is not healthy within this time is marked unhealthy,
    # which fails the deployment (and reverts it when "auto_revert" is true).
    healthy_deadline = "3m"

    # The deployment fails when no allocation turns healthy within this time;
    # the clock restarts every time one does.
    progress_deadline = "10m"

    # Go back to the last stable version when a deployment fails.
    auto_revert = false

    # Start this many allocations of the new version next to the old ones and
    # wait for a promotion before replacing the rest. A canary count equal to
    # the group's count gives a blue/green deployment.
    canary = 0
  }

  # "migrate" describes how allocations move off a node that is being drained.
  # Without it, a default strategy applies.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/migrate
  #
  migrate {
    # How many allocations of a group may move at the same time.
    max_parallel = 1

    # How health is judged: "checks" or "task_states".
    health_check = "checks"

    # How long a moved allocation must stay healthy.
    min_healthy_time = "10s"

    # How long a moved allocation has to become healthy.
    healthy_deadline = "5m"
  }

  # "ui" changes how the job is shown in the web UI.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/ui
  #
  ui {
    description = "Nomad **Example** Job"
    link {
      label = "Learn more about Nomad"
      url   = "https://developer.hashicorp.com/nomad"
    }
  }

  # A "group" is a set of tasks that always run together on the same node.
  #
  # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/group
  #
  group "cache" {
    # How many copies of the group to run (at least 0; 1 when omitted).
    count = 1

    # "network" asks for ports and sets up the group's networking.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/network
    #
    network {
      port "db" {
        to = 6379
      }
    }

    # "service" registers the group in service discovery (Nomad's own or
    # Consul) so that others can find it by name.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/service
    #
    service {
      name     = "redis-cache"
      tags     = ["global", "cache"]
      port     = "db"
      provider = "nomad"

      # A "check" keeps an eye on the service's health. Uncomment to enable.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/check
      #
      # check {
      #   name     = "alive"
      #   type     = "tcp"
      #   interval = "10s"
      #   timeout  = "2s"
      # }
    }

    # "restart" says what happens when a task fails on its node. Without it,
    # the default for the job type applies.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/restart
    #
    restart {
      # Up to this many restarts within "interval".
      attempts = 2
      interval = "30m"

      # The pause before each restart.
      delay = "15s"

      # When the attempts are used up: "fail" gives up, "delay" waits for the
      # next interval and tries again.
      mode = "fail"
    }

    # "ephemeral_disk" is the scratch disk the group's tasks share.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/ephemeral_disk
    #
    ephemeral_disk {
      # With sticky = true an updated allocation prefers the same node and keeps
      # its data.
      # sticky = true

      # With migrate = true the data follows the allocation to another node.
      # migrate = true

      # Size in MB.
      size = 300
    }

    # "affinity" expresses a placement preference rather than a requirement.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/affinity
    #
    # affinity {
    #   attribute = "${node.datacenter}"
    #   value     = "us-west1"
    #   weight    = 100
    # }

    # "spread" spreads allocations over the values of a node attribute.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/spread
    #
    # spread {
    #   attribute = "${node.datacenter}"
    #   target "us-east1" {
    #     percent = 60
    #   }
    #   target "us-west1" {
    #     percent = 40
    #   }
    # }

    # A "task" is one unit of work: a container, a process, a virtual machine.
    #
    # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/task
    #
    task "redis" {
      # The driver that runs the task.
      driver = "docker"

      # "config" is handed to the driver as it is; each driver documents its
      # own settings.
      config {
        image = "redis:7"
        ports = ["db"]

        # Fall back to anonymous pulls when registry authentication fails.
        auth_soft_fail = true
      }

      # "artifact" downloads files into the task directory before it starts.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/artifact
      #
      # artifact {
      #   source = "http://foo.com/artifact.tar.gz"
      #   options {
      #     checksum = "md5:c4aa853ad2215426eb7d70a21922e794"
      #   }
      # }

      # "logs" sets how many log files are kept and how large each may grow.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/logs
      #
      # logs {
      #   max_files     = 10
      #   max_file_size = 15
      # }

      # "identity" exposes the task's workload identity token in its
      # environment and in the file secrets/nomad_token.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/identity
      #
      identity {
        env  = true
        file = true
      }

      # "resources" is what the task needs from its node: cpu (MHz), memory
      # (MB), cores, devices.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/resources
      #
      resources {
        cpu    = 500 # MHz
        memory = 256 # MB
      }

      # "template" renders a file (or environment variables) from a template
      # that may read Nomad variables, Consul or Vault.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/template
      #
      # template {
      #   data          = "---\nkey: {{ key \"service/my-key\" }}"
      #   destination   = "local/file.yml"
      #   change_mode   = "signal"
      #   change_signal = "SIGHUP"
      # }

      # "vault" gives the task a Vault token.
      #
      # Reference: https://developer.hashicorp.com/nomad/docs/job-specification/vault
      #
      # vault {
      #   policies      = ["cdn", "frontend"]
      #   change_mode   = "signal"
      #   change_signal = "SIGHUP"
      # }

      # The time between asking the task to stop and killing it.
      # kill_timeout = "20s"
    }
  }
}
